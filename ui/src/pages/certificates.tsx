import { type FormEvent, useState } from 'react';
import { api, call, formBody, type Identity, type Problem, problemText, type Schemas } from '../api/client';
import { useCan } from '../session';
import { Dialog, day, daysUntil, Field, LoadError, TableWrap, useLoad, useToast } from '../ui';
import type { Connection } from './connections';

/** Upload error codes and the dialog field each concerns (API.md, Identities). */
const FIELD_OF: Record<string, 'password' | 'name' | 'url'> = {
  bad_password: 'password',
  password_required: 'password',
  validation_failed: 'name',
  forward_url_invalid: 'url',
  forward_destination_blocked: 'url',
};

type Report = Schemas['IdentityTestReport'];

/** "Used by 2 mappings and 1 connection." */
function usedText(used: { mappings: number; connections: number } | undefined): string {
  if (!used) return '';
  const n = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;
  return `Used by ${n(used.mappings, 'mapping')} and ${n(used.connections, 'connection')}.`;
}

/** The active version of an identity. */
function active(identity: Identity) {
  return identity.versions.find((v) => v.version === identity.activeVersion);
}

/** The yellow (inside the first alert threshold) or red (expired) banner, said in words. */
export function ExpiryBanner(props: {
  identity: Identity;
  thresholdDays: number;
  onUpload(): void;
  canUpload: boolean;
}) {
  const version = active(props.identity);
  if (!version) return null;
  const days = daysUntil(version.notAfter);
  if (days > props.thresholdDays) return null;
  const expired = days <= 0;
  return (
    <div className={`banner ${expired ? 'banner-red' : 'banner-yellow'}`} role="alert">
      <p>
        <strong>{expired ? 'Expired: ' : 'Expiring soon: '}</strong>
        The certificate “{props.identity.name}”{' '}
        {expired
          ? `expired ${-days === 0 ? 'today' : `${-days} day${-days === 1 ? '' : 's'} ago`}, on ${day(version.notAfter)}.`
          : `expires in ${days} day${days === 1 ? '' : 's'}, on ${day(version.notAfter)}.`}
      </p>
      {props.canUpload ? (
        <button type="button" onClick={props.onUpload}>
          Upload a new certificate
        </button>
      ) : null}
    </div>
  );
}

/** Outbound certificates (identities): the active one, expiry banner, upload, test, versions. */
export function CertificatesPage(props: { tenant: string }) {
  const { tenant } = props;
  const can = useCan();
  const toast = useToast();
  const path = { params: { path: { tenant } } };
  const identities = useLoad(async () => {
    const [list, settings, mappings, connections] = await Promise.all([
      api.GET('/v1/tenants/{tenant}/identities', path),
      api.GET('/v1/tenants/{tenant}/notification-settings', path),
      api.GET('/v1/tenants/{tenant}/mappings', path),
      call<{ items: Connection[] }>('GET', `/v1/tenants/${encodeURIComponent(tenant)}/connections`),
    ]);
    if (list.error) throw new Error(problemText(list.error));
    const thresholds = settings.data?.thresholdsDays ?? [7];
    // What deleting an identity would affect: enabled mappings and connections that present it.
    const usedBy = (id: string) => ({
      mappings: (mappings.data?.items ?? []).filter((m) => m.identityId === id && m.enabled && !m.deleted)
        .length,
      connections: (connections.data?.items ?? []).filter(
        (c) => c.clientCertificate.enabled && c.clientCertificate.identityId === id,
      ).length,
    });
    return { items: list.data.items, thresholdDays: Math.max(...thresholds, 0), usedBy };
  }, [tenant]);
  // A portal link made with intent=upload-certificate lands with the upload dialog open.
  const [dialog, setDialog] = useState<{ identity?: Identity } | undefined>(() =>
    new URLSearchParams(location.search).get('intent') === 'upload-certificate' && can('identities:write')
      ? {}
      : undefined,
  );
  const items = identities.data?.items ?? [];
  const current = items.find((i) => i.status !== 'disabled') ?? items[0];
  const currentVersion = current && active(current);
  const canWrite = can('identities:write');

  const act = async (label: string, run: () => Promise<{ error?: unknown }>) => {
    const { error } = await run();
    toast(error ? `${label} failed: ${problemText(error)}` : `${label}: done.`);
    identities.reload();
  };

  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Outbound certificates</h1>
      <LoadError error={identities.error} />
      {current && currentVersion ? (
        <section className="card current" aria-label="Active certificate">
          <dl>
            <dt>Name</dt>
            <dd>{current.name}</dd>
            <dt>Subject</dt>
            <dd className="mono">{currentVersion.subject}</dd>
            <dt>Expires</dt>
            <dd>{day(currentVersion.notAfter)}</dd>
            <dt>Status</dt>
            <dd>{current.status}</dd>
          </dl>
        </section>
      ) : identities.data ? (
        <p>No certificate yet. Upload one to call external APIs with mutual TLS.</p>
      ) : null}
      {current ? (
        <ExpiryBanner
          identity={current}
          thresholdDays={identities.data?.thresholdDays ?? 7}
          canUpload={canWrite}
          onUpload={() => setDialog({ identity: current })}
        />
      ) : null}
      {canWrite ? (
        <p>
          <button type="button" className="primary" onClick={() => setDialog({})}>
            Upload certificate
          </button>
        </p>
      ) : (
        <p className="hint">You can view certificates; uploading needs the identities:write permission.</p>
      )}
      {items.map((identity) => (
        <div className="card" key={identity.id}>
          <h2>
            {identity.name} <span className={`status status-${identity.status}`}>{identity.status}</span>
          </h2>
          <p className="hint">{usedText(identities.data?.usedBy(identity.id))}</p>
          <TableWrap label={`Versions of ${identity.name}`}>
            <table>
              <caption className="visually-hidden">Versions of {identity.name}</caption>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Subject</th>
                  <th scope="col">Expires</th>
                  <th scope="col">State</th>
                  {canWrite ? <th scope="col">Actions</th> : null}
                </tr>
              </thead>
              <tbody>
                {identity.versions.map((v) => (
                  <tr key={v.version}>
                    <td>{v.version}</td>
                    <td className="mono">{v.subject}</td>
                    <td>{day(v.notAfter)}</td>
                    <td>
                      {v.version === identity.activeVersion
                        ? 'active'
                        : v.activateAt
                          ? `scheduled for ${v.activateAt.replace('T', ' ').slice(0, 16)} UTC`
                          : 'inactive'}
                    </td>
                    {canWrite ? (
                      <td>
                        {v.version !== identity.activeVersion ? (
                          <button
                            type="button"
                            onClick={() =>
                              act(v.version < identity.activeVersion ? 'Rolled back' : 'Activated', () =>
                                api.POST('/v1/tenants/{tenant}/identities/{id}/versions/{version}/activate', {
                                  params: { path: { tenant, id: identity.id, version: v.version } },
                                }),
                              )
                            }
                          >
                            {v.version < identity.activeVersion ? 'Roll back to' : 'Activate'} version{' '}
                            {v.version}
                          </button>
                        ) : null}
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          {canWrite ? (
            <div className="actions">
              <button type="button" onClick={() => setDialog({ identity })}>
                Upload a new version
              </button>
              <button
                type="button"
                onClick={() =>
                  act(identity.status === 'disabled' ? 'Enabled' : 'Disabled', () =>
                    api.PATCH('/v1/tenants/{tenant}/identities/{id}', {
                      params: { path: { tenant, id: identity.id } },
                      body: { disabled: identity.status !== 'disabled' },
                    }),
                  )
                }
              >
                {identity.status === 'disabled' ? 'Enable' : 'Disable'} {identity.name}
              </button>
              <button
                type="button"
                className="danger"
                onClick={() =>
                  confirm(`Delete ${identity.name}? ${usedText(identities.data?.usedBy(identity.id))}`) &&
                  act('Deleted', () =>
                    api.DELETE('/v1/tenants/{tenant}/identities/{id}', {
                      params: { path: { tenant, id: identity.id } },
                    }),
                  )
                }
              >
                Delete {identity.name}
              </button>
            </div>
          ) : null}
        </div>
      ))}
      <Dialog
        title={dialog?.identity ? `New version of ${dialog.identity.name}` : 'Upload certificate'}
        open={dialog !== undefined}
        onClose={() => setDialog(undefined)}
      >
        <UploadForm
          tenant={tenant}
          identity={dialog?.identity}
          onDone={(message) => {
            setDialog(undefined);
            toast(message);
            identities.reload();
          }}
          onCancel={() => setDialog(undefined)}
        />
      </Dialog>
    </section>
  );
}

/** The upload dialog's form: file, password, name, optional activation time; or a test against a URL. */
function UploadForm(props: {
  tenant: string;
  identity?: Identity | undefined;
  onDone(message: string): void;
  onCancel(): void;
}) {
  const [errors, setErrors] = useState<Partial<Record<'file' | 'password' | 'name' | 'url', string>>>({});
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState<Report | undefined>();
  const path = { tenant: props.tenant };

  const fail = (error: unknown, fallback: 'file' | 'url') => {
    const code = (error as Problem).code ?? '';
    setErrors({ [FIELD_OF[code] ?? fallback]: problemText(error) });
  };

  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const test = (event.nativeEvent as SubmitEvent).submitter?.getAttribute('value') === 'test';
    setErrors({});
    setReport(undefined);
    const file = form.get('file');
    if (!(file instanceof File) || file.size === 0) {
      setErrors({ file: 'Choose a certificate file (.p12, .pfx or PEM).' });
      return;
    }
    const body = new FormData();
    body.set('file', file);
    body.set('password', String(form.get('password') ?? ''));
    setBusy(true);
    try {
      if (test) {
        const url = String(form.get('url') ?? '');
        if (!url) {
          setErrors({ url: 'Enter the https URL to test against.' });
          return;
        }
        body.set('url', url);
        const anchors = String(form.get('trustAnchorsPem') ?? '').trim();
        if (anchors) body.set('trustAnchorsPem', anchors);
        const { data, error } = await api.POST('/v1/tenants/{tenant}/identity-tests', {
          params: { path },
          body: body as never,
          ...formBody,
        });
        if (error) fail(error, 'url');
        else setReport(data);
        return;
      }
      const name = String(form.get('name') ?? '');
      if (name) body.set('name', name);
      const at = String(form.get('activateAt') ?? '');
      if (at) body.set('activateAt', new Date(at).toISOString());
      const { error } = props.identity
        ? await api.POST('/v1/tenants/{tenant}/identities/{id}/versions', {
            params: { path: { ...path, id: props.identity.id } },
            body: body as never,
            ...formBody,
          })
        : await api.POST('/v1/tenants/{tenant}/identities', {
            params: { path },
            body: body as never,
            ...formBody,
          });
      if (error) fail(error, 'file');
      else
        props.onDone(
          props.identity ? `New version of ${props.identity.name} saved.` : 'Certificate uploaded and saved.',
        );
    } finally {
      setBusy(false);
    }
  };

  // The field's error, tied to it for screen readers.
  const invalid = (id: keyof typeof errors) => ({
    'aria-describedby': errors[id] ? `${id}-error` : undefined,
    'aria-invalid': !!errors[id],
  });
  return (
    <form onSubmit={submit} noValidate>
      <Field label="Certificate file (.p12, .pfx or PEM)" id="file" error={errors.file}>
        <input id="file" name="file" type="file" accept=".p12,.pfx,.pem,.crt,.key" {...invalid('file')} />
      </Field>
      <Field label="Password" id="password" error={errors.password}>
        <input id="password" name="password" type="password" autoComplete="off" {...invalid('password')} />
      </Field>
      {props.identity ? (
        <Field label="Activate at (optional; now if empty)" id="activateAt">
          <input id="activateAt" name="activateAt" type="datetime-local" />
        </Field>
      ) : (
        <Field label="Name" id="name" error={errors.name}>
          <input id="name" name="name" type="text" {...invalid('name')} />
        </Field>
      )}
      <details>
        <summary>Test before saving</summary>
        <Field
          label="URL to test against"
          id="url"
          error={errors.url}
          hint="An https URL of the external API; nothing is stored."
        >
          <input id="url" name="url" type="url" placeholder="https://api.example.com/" {...invalid('url')} />
        </Field>
        <Field
          label="CA certificates of the server (PEM, optional)"
          id="trustAnchorsPem"
          hint="Only when the server's certificate is not from a public CA."
        >
          <textarea id="trustAnchorsPem" name="trustAnchorsPem" rows={3} className="mono" />
        </Field>
        <button type="submit" name="action" value="test" disabled={busy}>
          Run the test
        </button>
        {report ? <TestReport report={report} /> : null}
      </details>
      <div className="actions">
        <button type="submit" name="action" value="save" className="primary" disabled={busy}>
          Upload and save
        </button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** The tester's verdict, timings and the CA names the server asked for. */
function TestReport(props: { report: Report }) {
  const { report } = props;
  return (
    <div
      className={`banner ${report.verdict === 'ok' ? 'banner-green' : 'banner-yellow'}`}
      role="status"
      aria-label="Test result"
    >
      <p>
        <strong>Verdict: {report.verdict}</strong> — {report.message}
      </p>
      <p>
        Time: {Math.round(report.timingsMs.total)} ms
        {report.timingsMs.tls !== undefined ? ` (TLS ${Math.round(report.timingsMs.tls)} ms)` : ''}
        {report.http ? `; HTTP status ${report.http.status}` : ''}
      </p>
      <p>Accepted CA names:</p>
      <ul>
        {(report.handshake.acceptableCaNames ?? []).map((n) => (
          <li key={n} className="mono">
            {n}
          </li>
        ))}
        {report.handshake.acceptableCaNames?.length ? null : <li>none sent by the server</li>}
      </ul>
    </div>
  );
}
