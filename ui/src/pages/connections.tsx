import { type FormEvent, useState } from 'react';
import { api, call, type Identity, problemText } from '../api/client';
import { useCan } from '../session';
import { day, Field, LoadError, useLoad, useToast } from '../ui';

type AuthType = 'none' | 'basic' | 'header' | 'oauth2_client_credentials';

/** A saved external API request (API.md, Connections). */
export interface Connection {
  id: string;
  name: string;
  baseUrl: string;
  auth: {
    type: AuthType;
    username?: string;
    headerName?: string;
    tokenUrl?: string;
    clientId?: string;
    scope?: string;
    secretSet: boolean;
  };
  clientCertificate: {
    enabled: boolean;
    identityId?: string;
    available: boolean;
    unavailableReason?: string;
  };
  enabled: boolean;
}

/** Why the SSL switch is off, in words, from the API's reason and the identity it concerns. */
export function unavailableText(reason: string | undefined, identity: Identity | undefined): string {
  const notAfter = identity?.versions.find((v) => v.version === identity.activeVersion)?.notAfter;
  switch (reason) {
    case 'identity_expired':
      return `The certificate expired on ${day(notAfter)}: upload a new one first.`;
    case 'identity_disabled':
      return 'The certificate is disabled: enable it or upload a new one first.';
    case 'identity_not_yet_valid':
      return 'The certificate is not valid yet.';
    default:
      return 'Upload an active certificate first (Outbound certificates).';
  }
}

/** What the tenant's certificates allow for a new connection (the API answers the same per connection). */
function availabilityOf(identities: Identity[]): {
  available: boolean;
  reason?: string;
  identity?: Identity;
} {
  const usable = identities.find((i) => i.status === 'active' || i.status === 'expiring');
  if (usable) return { available: true, identity: usable };
  const expired = identities.find((i) => i.status === 'expired');
  if (expired) return { available: false, reason: 'identity_expired', identity: expired };
  const disabled = identities.find((i) => i.status === 'disabled');
  return disabled
    ? { available: false, reason: 'identity_disabled', identity: disabled }
    : { available: false, reason: 'no_identity' };
}

/** External API requests (connections): list, add, the SSL authentication switch. */
export function ConnectionsPage(props: { tenant: string }) {
  const { tenant } = props;
  const can = useCan();
  const toast = useToast();
  const base = `/v1/tenants/${encodeURIComponent(tenant)}/connections`;
  const load = useLoad(async () => {
    const [connections, identities] = await Promise.all([
      call<{ items: Connection[] }>('GET', base),
      api.GET('/v1/tenants/{tenant}/identities', { params: { path: { tenant } } }),
    ]);
    if (connections.error) throw new Error(problemText(connections.error));
    return { connections: connections.data?.items ?? [], identities: identities.data?.items ?? [] };
  }, [tenant]);
  const [authType, setAuthType] = useState<AuthType>('none');
  const [error, setError] = useState<string>();
  const canWrite = can('connections:write');
  const identities = load.data?.identities ?? [];
  const forNew = availabilityOf(identities);
  const identityOf = (c: Connection) =>
    identities.find((i) => i.id === c.clientCertificate.identityId) ?? forNew.identity;

  const create = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const f = new FormData(form);
    const s = (k: string) => String(f.get(k) ?? '');
    const auth =
      authType === 'basic'
        ? { type: authType, username: s('username'), password: s('secret') }
        : authType === 'header'
          ? { type: authType, headerName: s('headerName'), headerValue: s('secret') }
          : authType === 'oauth2_client_credentials'
            ? {
                type: authType,
                tokenUrl: s('tokenUrl'),
                clientId: s('clientId'),
                clientSecret: s('secret'),
                ...(s('scope') ? { scope: s('scope') } : {}),
                clientAuthentication: 'client_secret_basic',
              }
            : { type: 'none' };
    const { error } = await call('POST', base, {
      name: s('name'),
      baseUrl: s('baseUrl'),
      auth,
      clientCertificate: { enabled: f.get('ssl') === 'on' },
    });
    setError(error ? problemText(error) : undefined);
    if (!error) {
      form.reset();
      setAuthType('none');
      toast('Connection saved.');
      load.reload();
    }
  };
  const toggleSsl = async (c: Connection) => {
    const { error } = await call('PATCH', `${base}/${c.id}`, {
      clientCertificate: { enabled: !c.clientCertificate.enabled },
    });
    toast(
      error
        ? problemText(error)
        : `SSL authentication ${c.clientCertificate.enabled ? 'disabled' : 'enabled'} for ${c.name}.`,
    );
    load.reload();
  };
  const remove = async (c: Connection) => {
    const { error } = await call('DELETE', `${base}/${c.id}`);
    toast(error ? problemText(error) : `${c.name} deleted.`);
    load.reload();
  };

  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">External API requests</h1>
      <LoadError error={load.error} />
      {(load.data?.connections ?? []).map((c) => (
        <section className="card" key={c.id} aria-label={`Connection ${c.name}`}>
          <h2>{c.name}</h2>
          <p className="mono">{c.baseUrl}</p>
          <p>
            Authentication: {c.auth.type}
            {c.auth.username ? `, user ${c.auth.username}` : ''}
            {c.auth.headerName ? `, header ${c.auth.headerName}` : ''}
            {c.auth.clientId ? `, client ${c.auth.clientId}` : ''}
            {c.auth.type !== 'none' ? `; secret ${c.auth.secretSet ? 'set' : 'not set'}` : ''}
          </p>
          <SslSwitch
            id={`ssl-${c.id}`}
            checked={c.clientCertificate.enabled}
            available={c.clientCertificate.available || c.clientCertificate.enabled}
            reason={unavailableText(c.clientCertificate.unavailableReason, identityOf(c))}
            readOnly={!canWrite}
            onChange={() => toggleSsl(c)}
          />
          {canWrite ? (
            <button type="button" className="danger" onClick={() => remove(c)}>
              Delete {c.name}
            </button>
          ) : null}
        </section>
      ))}
      {canWrite ? (
        <form className="card" onSubmit={create}>
          <h2>Add an external API request</h2>
          <Field label="Name" id="c-name">
            <input id="c-name" name="name" required />
          </Field>
          <Field label="Base URL" id="c-url" error={error}>
            <input id="c-url" name="baseUrl" type="url" required placeholder="https://api.example.com/v1/" />
          </Field>
          <Field label="Authentication type" id="c-auth">
            <select
              id="c-auth"
              name="authType"
              value={authType}
              onChange={(e) => setAuthType(e.target.value as AuthType)}
            >
              <option value="none">None</option>
              <option value="basic">Basic</option>
              <option value="header">Custom header</option>
              <option value="oauth2_client_credentials">OAuth 2.0</option>
            </select>
          </Field>
          {authType === 'basic' ? (
            <Field label="Username" id="c-user">
              <input id="c-user" name="username" required />
            </Field>
          ) : null}
          {authType === 'header' ? (
            <Field label="Header name" id="c-header">
              <input id="c-header" name="headerName" required />
            </Field>
          ) : null}
          {authType === 'oauth2_client_credentials' ? (
            <>
              <Field label="Token URL" id="c-token">
                <input id="c-token" name="tokenUrl" type="url" required />
              </Field>
              <Field label="Client ID" id="c-client">
                <input id="c-client" name="clientId" required />
              </Field>
              <Field label="Scope" id="c-scope">
                <input id="c-scope" name="scope" />
              </Field>
            </>
          ) : null}
          {authType !== 'none' ? (
            <Field
              label={
                authType === 'basic' ? 'Password' : authType === 'header' ? 'Header value' : 'Client secret'
              }
              id="c-secret"
              hint="Write-only: stored sealed, never shown again."
            >
              <input id="c-secret" name="secret" type="password" autoComplete="off" />
            </Field>
          ) : null}
          <SslSwitch
            id="c-ssl"
            name="ssl"
            available={forNew.available}
            reason={unavailableText(forNew.reason, forNew.identity)}
          />
          <button type="submit" className="primary">
            Save
          </button>
        </form>
      ) : null}
    </section>
  );
}

/** The "Enable SSL authentication" checkbox, disabled with its reason when no certificate can be used. */
function SslSwitch(props: {
  id: string;
  name?: string;
  checked?: boolean;
  available: boolean;
  reason: string;
  readOnly?: boolean;
  onChange?(): void;
}) {
  const disabled = !props.available || props.readOnly === true;
  return (
    <div className="field checkbox-block">
      <div className="field checkbox">
        <input
          id={props.id}
          name={props.name}
          type="checkbox"
          disabled={disabled}
          aria-describedby={props.available ? undefined : `${props.id}-why`}
          {...(props.onChange ? { checked: props.checked ?? false, onChange: props.onChange } : {})}
        />
        <label htmlFor={props.id}>Enable SSL authentication</label>
      </div>
      {props.available ? null : (
        <p className="hint" id={`${props.id}-why`}>
          {props.reason}
        </p>
      )}
    </div>
  );
}
