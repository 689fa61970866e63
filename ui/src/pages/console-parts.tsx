import { type FormEvent, useState } from 'react';
import { api, problemText, type Schemas } from '../api/client';
import { day, daysUntil, Field, LoadError, useLoad } from '../ui';

interface Expiring {
  tenant: string;
  kind: string;
  name: string;
  notAfter: string;
}

/**
 * Everything that expires across all tenants within N days: each tenant's identities (active
 * version) and client certificates, read through the public API with the operator's session.
 */
export function ExpiringAcrossTenants(props: { tenants: string[] }) {
  const [days, setDays] = useState(30);
  const load = useLoad(async () => {
    const found: Expiring[] = [];
    for (const tenant of props.tenants) {
      const path = { params: { path: { tenant } } };
      const [identities, clients] = await Promise.all([
        api.GET('/v1/tenants/{tenant}/identities', path),
        api.GET('/v1/tenants/{tenant}/client-certificates', path),
      ]);
      for (const i of identities.data?.items ?? []) {
        const v = i.versions.find((x) => x.version === i.activeVersion);
        if (v && i.status !== 'disabled')
          found.push({ tenant, kind: 'outbound certificate', name: i.name, notAfter: v.notAfter });
      }
      for (const c of clients.data?.items ?? []) {
        if (c.status !== 'revoked')
          found.push({ tenant, kind: 'client certificate', name: c.name, notAfter: c.notAfter });
      }
    }
    return found
      .filter((f) => daysUntil(f.notAfter) <= days)
      .sort((a, b) => a.notAfter.localeCompare(b.notAfter));
  }, [props.tenants.join(','), days]);
  return (
    <div className="card">
      <h2>Expiring across all tenants</h2>
      <Field label="Within this many days" id="expiring-days">
        <input
          id="expiring-days"
          type="number"
          min={1}
          max={3650}
          value={days}
          onChange={(e) => setDays(Number(e.target.value) || 1)}
        />
      </Field>
      <LoadError error={load.error} />
      {load.data?.length === 0 ? <p>Nothing expires within {days} days.</p> : null}
      <ul aria-label="Expiring certificates">
        {(load.data ?? []).map((f) => (
          <li key={`${f.tenant}-${f.kind}-${f.name}`}>
            <strong>{f.tenant}</strong>: {f.kind} “{f.name}”{' '}
            {daysUntil(f.notAfter) <= 0
              ? `expired on ${day(f.notAfter)}`
              : `expires in ${daysUntil(f.notAfter)} days, on ${day(f.notAfter)}`}
          </li>
        ))}
      </ul>
    </div>
  );
}

type Member = Schemas['Member'];

/** A tenant's members, adding one, and a portal link (single use, 5 minutes) for a member. */
export function PortalLinks(props: { tenant: string }) {
  const tenant = props.tenant;
  const members = useLoad(async () => {
    const { data, error } = await api.GET('/v1/tenants/{tenant}/members', { params: { path: { tenant } } });
    if (error) throw new Error(problemText(error));
    return data.items;
  }, [tenant]);
  const [link, setLink] = useState<{ email: string; url: string; expiresAt: string }>();
  const [error, setError] = useState<string>();
  const add = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const f = new FormData(form);
    const email = String(f.get('email'));
    const id = email
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '');
    const { error } = await api.PUT('/v1/tenants/{tenant}/members/{memberId}', {
      params: { path: { tenant, memberId: id } },
      body: { email, roles: [String(f.get('role'))] },
    });
    setError(error ? problemText(error) : undefined);
    if (!error) {
      form.reset();
      members.reload();
    }
  };
  const portalLink = async (m: Member) => {
    const { data, error } = await api.POST('/v1/tenants/{tenant}/portal-links', {
      params: { path: { tenant } },
      body: { memberId: m.id },
    });
    setError(error ? problemText(error) : undefined);
    if (data) setLink({ email: m.email, ...data });
  };
  return (
    <div className="card">
      <h2>Members of {tenant}</h2>
      <LoadError error={members.error} />
      <ul>
        {(members.data ?? []).map((m) => (
          <li key={m.id}>
            {m.email} ({m.roles.join(', ')}){' '}
            <button type="button" onClick={() => portalLink(m)}>
              Portal link for {m.email}
            </button>
          </li>
        ))}
      </ul>
      {link ? (
        <div role="status">
          <label htmlFor="portal-link">
            Portal link for {link.email} (single use, until {link.expiresAt.replace('T', ' ').slice(0, 16)}{' '}
            UTC)
          </label>
          <input id="portal-link" readOnly value={link.url} className="mono wide" />
        </div>
      ) : null}
      <form onSubmit={add} className="filters">
        <Field label="Member e-mail" id="member-email" error={error}>
          <input id="member-email" name="email" type="email" required />
        </Field>
        <Field label="Role" id="member-role">
          <select id="member-role" name="role" defaultValue="admin">
            <option value="admin">admin</option>
            <option value="viewer">viewer</option>
          </select>
        </Field>
        <button type="submit">Add member</button>
      </form>
    </div>
  );
}
