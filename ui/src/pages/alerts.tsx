import { type FormEvent, useState } from 'react';
import { api, problemText } from '../api/client';
import { useCan } from '../session';
import { day, Field, LoadError, TableWrap, useLoad, useToast } from '../ui';

const lines = (value: FormDataEntryValue | null) =>
  String(value ?? '')
    .split(/[\s,]+/)
    .filter(Boolean);

/** Alerts, notification settings and the audit log (filterable, paged). */
export function AlertsPage(props: { tenant: string }) {
  const { tenant } = props;
  const can = useCan();
  const toast = useToast();
  const path = { params: { path: { tenant } } };
  const alerts = useLoad(async () => {
    const [alerts, settings] = await Promise.all([
      api.GET('/v1/tenants/{tenant}/alerts', path),
      api.GET('/v1/tenants/{tenant}/notification-settings', path),
    ]);
    if (alerts.error) throw new Error(problemText(alerts.error));
    return { alerts: alerts.data.items, settings: settings.data };
  }, [tenant]);
  const [settingsError, setSettingsError] = useState<string>();
  const [filter, setFilter] = useState<{ action?: string; objectType?: string }>({});
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const audit = useLoad(async () => {
    const { data, error } = await api.GET('/v1/tenants/{tenant}/audit-events', {
      params: { path: { tenant }, query: { ...filter, limit: 20, ...(cursor ? { cursor } : {}) } },
    });
    if (error) throw new Error(problemText(error));
    return data;
  }, [tenant, filter, cursor]);

  const settings = alerts.data?.settings as
    | { emails: string[]; webhookUrls: string[]; thresholdsDays: number[]; notifyMembers?: boolean }
    | undefined;
  const save = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const f = new FormData(event.currentTarget);
    const { error } = await api.PUT('/v1/tenants/{tenant}/notification-settings', {
      ...path,
      body: {
        emails: lines(f.get('emails')),
        webhookUrls: lines(f.get('webhooks')),
        thresholdsDays: lines(f.get('thresholds')).map(Number),
        // Servers older than the people API know no notifyMembers (and refuse unknown fields).
        ...(settings?.notifyMembers !== undefined ? { notifyMembers: f.get('notifyMembers') === 'on' } : {}),
      } as never,
    });
    setSettingsError(error ? problemText(error) : undefined);
    if (!error) toast('Notification settings saved.');
  };
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Alerts and audit</h1>
      <LoadError error={alerts.error} />
      <h2>Alerts</h2>
      {alerts.data?.alerts.length === 0 ? <p>No alerts: nothing expires soon.</p> : null}
      <ul>
        {(alerts.data?.alerts ?? []).map((a) => (
          <li key={`${a.objectType}-${a.objectId}-${a.kind}`}>
            {a.objectType} {a.objectId}: {a.kind}, {a.daysLeft} days left (expires {day(a.notAfter)})
          </li>
        ))}
      </ul>
      {settings ? (
        <form className="card" onSubmit={save} key={JSON.stringify(settings)}>
          <h2>Notification settings</h2>
          <fieldset disabled={!can('notifications:write')}>
            <legend className="visually-hidden">Notification settings</legend>
            <Field label="E-mail addresses (one per line)" id="emails">
              <textarea id="emails" name="emails" rows={3} defaultValue={settings.emails.join('\n')} />
            </Field>
            <Field label="Webhook URLs (one per line)" id="webhooks">
              <textarea
                id="webhooks"
                name="webhooks"
                rows={2}
                defaultValue={settings.webhookUrls.join('\n')}
              />
            </Field>
            <Field label="Alert thresholds in days (comma-separated)" id="thresholds" error={settingsError}>
              <input id="thresholds" name="thresholds" defaultValue={settings.thresholdsDays.join(', ')} />
            </Field>
            {settings.notifyMembers !== undefined ? (
              <div className="field checkbox">
                <input
                  id="notifyMembers"
                  name="notifyMembers"
                  type="checkbox"
                  defaultChecked={settings.notifyMembers}
                />
                <label htmlFor="notifyMembers">Also notify members with admin or external-API access</label>
              </div>
            ) : null}
            <button type="submit" className="primary">
              Save settings
            </button>
          </fieldset>
        </form>
      ) : null}
      <h2>Audit log</h2>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget);
          const next: { action?: string; objectType?: string } = {};
          if (f.get('action')) next.action = String(f.get('action'));
          if (f.get('objectType')) next.objectType = String(f.get('objectType'));
          setCursors([]);
          setFilter(next);
        }}
      >
        <Field label="Action" id="f-action">
          <input id="f-action" name="action" placeholder="identity.created" />
        </Field>
        <Field label="Object type" id="f-type">
          <input id="f-type" name="objectType" placeholder="identity" />
        </Field>
        <button type="submit">Filter</button>
      </form>
      <LoadError error={audit.error} />
      <TableWrap label="Audit events">
        <table>
          <caption className="visually-hidden">Audit events</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Actor</th>
              <th scope="col">Action</th>
              <th scope="col">Object</th>
            </tr>
          </thead>
          <tbody>
            {(audit.data?.items ?? []).map((e) => (
              <tr key={`${e.at}-${e.action}-${e.objectType}-${e.objectId}`}>
                <td>{e.at.replace('T', ' ').slice(0, 19)}</td>
                <td>{e.actor}</td>
                <td>{e.action}</td>
                <td className="mono">
                  {e.objectType} {e.objectId}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      <div className="actions">
        <button
          type="button"
          disabled={cursors.length === 0}
          onClick={() => setCursors((c) => c.slice(0, -1))}
        >
          Newer
        </button>
        <button
          type="button"
          disabled={!audit.data?.nextCursor}
          onClick={() =>
            audit.data?.nextCursor && setCursors((c) => [...c, audit.data?.nextCursor as string])
          }
        >
          Older
        </button>
      </div>
    </section>
  );
}
