import { type FormEvent, useState } from 'react';
import { api, formBody, problemText } from '../api/client';
import { useCan } from '../session';
import { day, Field, LoadError, TableWrap, useLoad, useToast } from '../ui';

/** Inbound mTLS: client certificates (upload by file or PEM, sign a CSR), revoke, delete, edge hello. */
export function InboundPage(props: { tenant: string }) {
  const { tenant } = props;
  const can = useCan();
  const toast = useToast();
  const path = { params: { path: { tenant } } };
  const list = useLoad(async () => {
    const { data, error } = await api.GET('/v1/tenants/{tenant}/client-certificates', path);
    if (error) throw new Error(problemText(error));
    return data.items;
  }, [tenant]);
  const [uploadError, setUploadError] = useState<string>();
  const [csrError, setCsrError] = useState<string>();
  const [issued, setIssued] = useState<{ certificatePem: string; chainPem: string }>();
  const edge = `https://${location.hostname}:8443`;
  const hello = `curl --cert client.pem --key client.key -H "Authorization: Bearer $TWOWAY_API_KEY" ${edge}/v1/tenants/${tenant}/mtls/hello`;

  const upload = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const f = new FormData(form);
    const body = new FormData();
    body.set('name', String(f.get('name') ?? ''));
    const file = f.get('file');
    if (file instanceof File && file.size > 0) body.set('file', file);
    else body.set('certificatePem', String(f.get('pem') ?? ''));
    const { error } = await api.POST('/v1/tenants/{tenant}/client-certificates', {
      ...path,
      body: body as never,
      ...formBody,
    });
    setUploadError(error ? problemText(error) : undefined);
    if (!error) {
      form.reset();
      toast('Client certificate registered.');
      list.reload();
    }
  };
  const sign = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const f = new FormData(event.currentTarget);
    const { data, error } = await api.POST('/v1/tenants/{tenant}/certificate-signing-requests', {
      ...path,
      body: { name: String(f.get('name') ?? ''), csrPem: String(f.get('csr') ?? '') },
    });
    setCsrError(error ? problemText(error) : undefined);
    if (data && 'certificatePem' in data) {
      setIssued({ certificatePem: String(data.certificatePem), chainPem: String(data.chainPem ?? '') });
      toast('Certificate issued.');
      list.reload();
    }
  };
  const act = async (label: string, run: () => Promise<{ error?: unknown }>) => {
    const { error } = await run();
    toast(error ? `${label} failed: ${problemText(error)}` : `${label}.`);
    list.reload();
  };
  const canWrite = can('client-certificates:write');
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Inbound mTLS</h1>
      <div className="card">
        <h2>Try it</h2>
        <p>
          Edge URL: <code>{edge}</code>
        </p>
        <label htmlFor="hello">Hello command</label>
        <textarea id="hello" readOnly rows={3} value={hello} />
        <button
          type="button"
          onClick={() => navigator.clipboard?.writeText(hello).then(() => toast('Copied.'))}
        >
          Copy command
        </button>
      </div>
      <LoadError error={list.error} />
      <TableWrap label="Client certificates">
        <table>
          <caption className="visually-hidden">Client certificates</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Subject</th>
              <th scope="col">Source</th>
              <th scope="col">Status</th>
              <th scope="col">Expires</th>
              {canWrite ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {(list.data ?? []).map((c) => (
              <tr key={c.id}>
                <td>{c.name}</td>
                <td className="mono">{c.subject}</td>
                <td>{c.source}</td>
                <td>{c.status}</td>
                <td>{day(c.notAfter)}</td>
                {canWrite ? (
                  <td className="actions">
                    {c.status !== 'revoked' ? (
                      <button
                        type="button"
                        onClick={() =>
                          act('Revoked', () =>
                            api.POST('/v1/tenants/{tenant}/client-certificates/{id}/revoke', {
                              params: { path: { tenant, id: c.id } },
                              body: {},
                            }),
                          )
                        }
                      >
                        Revoke {c.name}
                      </button>
                    ) : null}
                    <button
                      type="button"
                      className="danger"
                      onClick={() =>
                        act('Deleted', () =>
                          api.DELETE('/v1/tenants/{tenant}/client-certificates/{id}', {
                            params: { path: { tenant, id: c.id } },
                          }),
                        )
                      }
                    >
                      Delete {c.name}
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {canWrite ? (
        <>
          <form className="card" onSubmit={upload}>
            <h2>Upload certificate</h2>
            <Field label="Name" id="cc-name">
              <input id="cc-name" name="name" required />
            </Field>
            <Field label="Certificate file (PEM or DER)" id="cc-file">
              <input id="cc-file" name="file" type="file" accept=".pem,.crt,.cer,.der" />
            </Field>
            <Field label="Or paste the PEM certificate" id="cc-pem" error={uploadError}>
              <textarea id="cc-pem" name="pem" rows={5} className="mono" aria-invalid={!!uploadError} />
            </Field>
            <button type="submit" className="primary">
              Register certificate
            </button>
          </form>
          <form className="card" onSubmit={sign}>
            <h2>Sign a CSR</h2>
            <Field label="Name" id="csr-name">
              <input id="csr-name" name="name" required />
            </Field>
            <Field label="Certificate signing request (PEM)" id="csr" error={csrError}>
              <textarea id="csr" name="csr" rows={6} className="mono" required />
            </Field>
            <button type="submit" className="primary">
              Sign
            </button>
            {issued ? (
              <p>
                <a
                  download="certificate.pem"
                  href={`data:application/x-pem-file,${encodeURIComponent(issued.certificatePem)}`}
                >
                  Download certificate
                </a>{' '}
                <a
                  download="chain.pem"
                  href={`data:application/x-pem-file,${encodeURIComponent(issued.chainPem)}`}
                >
                  Download chain
                </a>
              </p>
            ) : null}
          </form>
        </>
      ) : null}
    </section>
  );
}
