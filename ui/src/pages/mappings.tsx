import { type FormEvent, useState } from 'react';
import { api, problemText } from '../api/client';
import { useCan } from '../session';
import { Field, LoadError, TableWrap, useLoad, useToast } from '../ui';

/** Mappings: which identity a service's URLs are called with. */
export function MappingsPage(props: { tenant: string }) {
  const { tenant } = props;
  const can = useCan();
  const toast = useToast();
  const [error, setError] = useState<string>();
  const path = { params: { path: { tenant } } };
  const load = useLoad(async () => {
    const [mappings, identities] = await Promise.all([
      api.GET('/v1/tenants/{tenant}/mappings', path),
      api.GET('/v1/tenants/{tenant}/identities', path),
    ]);
    if (mappings.error) throw new Error(problemText(mappings.error));
    return { mappings: mappings.data.items, identities: identities.data?.items ?? [] };
  }, [tenant]);
  const create = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const f = new FormData(form);
    const { error } = await api.POST('/v1/tenants/{tenant}/mappings', {
      ...path,
      body: {
        name: String(f.get('name')),
        service: String(f.get('service')),
        url: String(f.get('url')),
        match: String(f.get('match')) as 'prefix',
        identityId: String(f.get('identityId')),
      },
    });
    setError(error ? problemText(error) : undefined);
    if (!error) {
      form.reset();
      toast('Mapping saved.');
      load.reload();
    }
  };
  const identityName = (id: string) => load.data?.identities.find((i) => i.id === id)?.name ?? id;
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Mappings</h1>
      <LoadError error={load.error} />
      <TableWrap label="Mappings">
        <table>
          <caption className="visually-hidden">Mappings</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Service</th>
              <th scope="col">URL</th>
              <th scope="col">Match</th>
              <th scope="col">Identity</th>
              <th scope="col">Enabled</th>
            </tr>
          </thead>
          <tbody>
            {(load.data?.mappings ?? []).map((m) => (
              <tr key={m.id}>
                <td>{m.name}</td>
                <td>{m.service}</td>
                <td className="mono">{m.url}</td>
                <td>{m.match}</td>
                <td>{identityName(m.identityId)}</td>
                <td>
                  {can('mappings:write') ? (
                    <input
                      type="checkbox"
                      aria-label={`${m.name} enabled`}
                      checked={m.enabled}
                      onChange={async () => {
                        const { error } = await api.PATCH('/v1/tenants/{tenant}/mappings/{id}', {
                          params: { path: { tenant, id: m.id } },
                          body: { enabled: !m.enabled },
                        });
                        toast(
                          error ? problemText(error) : `${m.name} ${m.enabled ? 'disabled' : 'enabled'}.`,
                        );
                        load.reload();
                      }}
                    />
                  ) : m.enabled ? (
                    'yes'
                  ) : (
                    'no'
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {can('mappings:write') ? (
        <form className="card" onSubmit={create}>
          <h2>Add a mapping</h2>
          <Field label="Name" id="m-name">
            <input id="m-name" name="name" required />
          </Field>
          <Field label="Service" id="m-service">
            <input id="m-service" name="service" required />
          </Field>
          <Field label="URL" id="m-url" error={error}>
            <input id="m-url" name="url" type="url" required placeholder="https://api.example.com/" />
          </Field>
          <Field label="Match" id="m-match">
            <select id="m-match" name="match" defaultValue="prefix">
              <option value="prefix">prefix</option>
              <option value="exact">exact</option>
              <option value="any">any</option>
            </select>
          </Field>
          <Field label="Identity" id="m-identity">
            <select id="m-identity" name="identityId" required>
              {(load.data?.identities ?? []).map((i) => (
                <option key={i.id} value={i.id}>
                  {i.name}
                </option>
              ))}
            </select>
          </Field>
          <button type="submit" className="primary">
            Save mapping
          </button>
        </form>
      ) : null}
    </section>
  );
}
