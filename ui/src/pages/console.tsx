import { type FormEvent, useState } from 'react';
import { api, call, problemText } from '../api/client';
import { Field, LoadError, useLoad, useToast } from '../ui';
import { ExpiringAcrossTenants, PortalLinks } from './console-parts';

/** The operator console: tenants (list, search, create, open), health. */
export function ConsolePage() {
  const toast = useToast();
  const [search, setSearch] = useState('');
  const [selected, setSelected] = useState<string>();
  const [created, setCreated] = useState<{ id: string; apiKey: string }>();
  const [error, setError] = useState<string>();
  const tenants = useLoad(async () => {
    const { data, error } = await api.GET('/v1/tenants');
    if (error) throw new Error(problemText(error));
    return (data as unknown as { items: { id: string; name: string; createdAt: string }[] }).items;
  }, []);
  const health = useLoad(async () => {
    const ready = await call<{ status: string }>('GET', '/readyz');
    return ready.data?.status ?? ready.error?.detail ?? 'not ready';
  }, []);
  const create = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const f = new FormData(form);
    const { data, error } = await api.POST('/v1/tenants', {
      body: { id: String(f.get('id')), name: String(f.get('name')) },
    });
    setError(error ? problemText(error) : undefined);
    if (data) {
      setCreated({ id: data.id, apiKey: String((data as { apiKey?: string }).apiKey ?? '') });
      form.reset();
      toast(`Tenant ${data.id} created.`);
      tenants.reload();
    }
  };
  const shown = (tenants.data ?? []).filter((t) =>
    `${t.id} ${t.name}`.toLowerCase().includes(search.toLowerCase()),
  );
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Operator console</h1>
      <p className="card">
        Health: <strong>{health.data ?? '…'}</strong>
      </p>
      <LoadError error={tenants.error} />
      <h2>Tenants</h2>
      <Field label="Search tenants" id="search">
        <input id="search" type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
      </Field>
      <ul className="tenants">
        {shown.map((t) => (
          <li key={t.id}>
            <a href={`#/t/${encodeURIComponent(t.id)}/certificates`}>{t.name}</a>{' '}
            <span className="mono">{t.id}</span>{' '}
            <button type="button" onClick={() => setSelected(t.id)}>
              Members of {t.id}
            </button>
          </li>
        ))}
      </ul>
      {selected ? <PortalLinks tenant={selected} /> : null}
      <ExpiringAcrossTenants tenants={(tenants.data ?? []).map((t) => t.id)} />
      <form className="card" onSubmit={create}>
        <h2>Create a tenant</h2>
        <Field label="Tenant id" id="t-id" error={error} hint="Lowercase letters, digits and hyphens.">
          <input id="t-id" name="id" required pattern="[a-z0-9][a-z0-9\-]{1,62}" />
        </Field>
        <Field label="Tenant name" id="t-name">
          <input id="t-name" name="name" required />
        </Field>
        <button type="submit" className="primary">
          Create tenant
        </button>
        {created ? (
          <p role="status">
            API key of {created.id} (shown once): <code className="mono">{created.apiKey}</code>
          </p>
        ) : null}
      </form>
    </section>
  );
}
