import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, setCsrfToken, whenSessionEnds } from './api/client';
import { AlertsPage } from './pages/alerts';
import { CertificatesPage } from './pages/certificates';
import { ConnectionsPage } from './pages/connections';
import { ConsolePage } from './pages/console';
import { InboundPage } from './pages/inbound';
import { MappingsPage } from './pages/mappings';
import { SignInPage } from './pages/sign-in';
import { type Session, SessionContext } from './session';
import './styles.css';
import { ToastProvider } from './ui';

/** The tenant pages, in navigation order: hash route segment, title. */
const PAGES = [
  ['certificates', 'Outbound certificates'],
  ['connections', 'External API requests'],
  ['mappings', 'Mappings'],
  ['inbound', 'Inbound mTLS'],
  ['alerts', 'Alerts and audit'],
] as const;

/** `#/t/{tenant}/{page}` or `#/console`. */
function parseHash(hash: string): { tenant?: string; page: string } {
  const parts = hash.replace(/^#\/?/, '').split('/');
  if (parts[0] === 't' && parts[1])
    return { tenant: decodeURIComponent(parts[1]), page: parts[2] || 'certificates' };
  return { page: parts[0] || '' };
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

function App() {
  const hash = useHash();
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [checked, setChecked] = useState(false);
  const [ended, setEnded] = useState(false);
  const refresh = () =>
    api.GET('/v1/session').then(({ data }) => {
      setSession(data ?? null);
      setCsrfToken(data?.csrfToken);
      setChecked(true);
    });
  // biome-ignore lint/correctness/useExhaustiveDependencies: once
  useEffect(() => {
    void refresh();
    whenSessionEnds(() => {
      setCsrfToken(undefined);
      setEnded(true);
      setSession(null);
    });
  }, []);
  if (!checked) return <p className="loading">Loading…</p>;
  if (session === null)
    return (
      <SignInPage
        notice={ended ? 'Your session ended. Open a new portal link, or sign in again.' : undefined}
        onSignedIn={() => {
          setEnded(false);
          return refresh();
        }}
      />
    );
  let { tenant, page } = parseHash(hash);
  if (tenant === undefined && session?.kind === 'member') {
    tenant = session.tenant;
    page = page || 'certificates';
  }
  const signOut = async () => {
    await api.POST('/v1/session/logout');
    location.hash = '';
    void refresh();
  };
  return (
    <SessionContext.Provider value={session}>
      <button type="button" className="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header className="top">
        <strong className="brand">Twoway</strong>
        <nav aria-label="Pages">
          <ul>
            {session?.kind === 'operator' ? (
              <li>
                <a href="#/console" aria-current={tenant === undefined ? 'page' : undefined}>
                  Console
                </a>
              </li>
            ) : null}
            {tenant !== undefined
              ? PAGES.map(([id, title]) => (
                  <li key={id}>
                    <a
                      href={`#/t/${encodeURIComponent(tenant)}/${id}`}
                      aria-current={page === id ? 'page' : undefined}
                    >
                      {title}
                    </a>
                  </li>
                ))
              : null}
          </ul>
        </nav>
        {session ? (
          <button type="button" className="link" onClick={signOut}>
            Sign out {session.email ?? ''}
          </button>
        ) : null}
      </header>
      <main id="main" tabIndex={-1}>
        {tenant === undefined ? (
          <ConsolePage />
        ) : (
          <TenantPage
            tenant={tenant}
            page={page}
            title={PAGES.find(([id]) => id === page)?.[1] ?? 'Not found'}
          />
        )}
      </main>
    </SessionContext.Provider>
  );
}

function TenantPage(props: { tenant: string; page: string; title: string }) {
  useEffect(() => {
    document.title = `${props.title} · ${props.tenant} · Twoway`;
  }, [props.title, props.tenant]);
  const { tenant } = props;
  switch (props.page) {
    case 'certificates':
      return <CertificatesPage tenant={tenant} />;
    case 'connections':
      return <ConnectionsPage tenant={tenant} />;
    case 'mappings':
      return <MappingsPage tenant={tenant} />;
    case 'inbound':
      return <InboundPage tenant={tenant} />;
    case 'alerts':
      return <AlertsPage tenant={tenant} />;
    default:
      return <h1>Page not found</h1>;
  }
}

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <ToastProvider>
        <App />
      </ToastProvider>
    </StrictMode>,
  );
}
