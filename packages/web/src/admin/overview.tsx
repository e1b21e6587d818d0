import { monthOf } from '@apigate/gateway';
import type { Context } from 'hono';
import type { WebContext } from '../context.js';
import { Card, Chart, fmt, minuteText, Stat } from '../ui.js';
import { DataTable, NumCell } from '../ui/table.js';
import { minutesChart } from '../portal/usage-view.js';
import { type AdminSession, adminPage } from './session.js';

const MINUTE = 60_000;

/** Every minute of [from, to) with its counts (minutes without traffic are zero), so rates read right. */
function fillMinutes(rows: { minute: Date; requests: number; errors: number }[], from: Date, to: Date) {
  const by = new Map(rows.map((r) => [r.minute.getTime(), r]));
  const out: { minute: string; requests: number; errors: number }[] = [];
  for (let t = from.getTime(); t < to.getTime(); t += MINUTE) out.push({ minute: new Date(t).toISOString(), requests: by.get(t)?.requests ?? 0, errors: by.get(t)?.errors ?? 0 });
  return out;
}

/** GET /admin: traffic of the last hour from the per-minute usage, the month's top keys and users. */
export async function overviewPage(w: WebContext, c: Context, s: AdminSession): Promise<Response> {
  const d = w.store.domain;
  const now = w.now();
  const to = new Date(Math.floor(now.getTime() / MINUTE) * MINUTE + MINUTE);
  const from = new Date(to.getTime() - 60 * MINUTE);
  const month = monthOf(now);
  const [minutes, topKeys, topUsers] = await Promise.all([d.usage.allMinutes({ from, to }), d.usage.topKeys(month, 10), d.usage.byUser(month)]);
  const filled = fillMinutes(minutes, from, to);
  const hourRequests = filled.reduce((n, m) => n + m.requests, 0);
  const hourErrors = filled.reduce((n, m) => n + m.errors, 0);
  const last5 = filled.slice(-5).reduce((n, m) => n + m.requests, 0) / 5;
  const keyInfo = new Map((await Promise.all(topKeys.map((k) => d.keys.find(k.keyId)))).filter((k) => k !== undefined).map((k) => [k.id, k]));
  const users = new Map(
    (await Promise.all([...new Set([...topKeys.map((k) => k.userId), ...topUsers.slice(0, 10).map((u) => u.userId)])].map((id) => d.users.find(id))))
      .filter((u) => u !== undefined)
      .map((u) => [u.id, u]),
  );
  const monthTotal = topUsers.reduce((n, u) => n + u.requests, 0);
  return adminPage(
    c,
    s,
    'Overview',
    <>
      <div class="grid four">
        <Stat label="Requests per minute (last 5 min)" value={last5.toFixed(1)} id="rpm" />
        <Stat label="Requests, last hour" value={fmt(hourRequests)} id="hour-requests" />
        <Stat label="Error rate, last hour" value={hourRequests ? `${((hourErrors / hourRequests) * 100).toFixed(1)}%` : '—'} id="error-rate" />
        <Stat label={`Requests in ${month}`} value={fmt(monthTotal)} />
      </div>
      <Chart id="traffic" caption="Requests and errors per minute, last hour (UTC)" spec={minutesChart(filled)} xLabel={minuteText} />
      <div class="grid two">
        <Card title={`Top keys, ${month}`}>
          <DataTable
            id="top-keys"
            card={false}
            columns={[{ label: 'Key' }, { label: 'User' }, { label: 'Requests', class: 'num' }, { label: 'Errors', class: 'num' }]}
            rows={topKeys}
            row={(k) => (
              <tr>
                <td>
                  <code>{keyInfo.get(k.keyId)?.prefix ?? k.keyId}</code> {keyInfo.get(k.keyId)?.name}
                </td>
                <td>{users.get(k.userId)?.email ?? k.userId}</td>
                <NumCell label="Requests" value={k.requests} />
                <NumCell label="Errors" value={k.errors} />
              </tr>
            )}
          />
        </Card>
        <Card title={`Top users, ${month}`}>
          <DataTable
            card={false}
            columns={[{ label: 'User' }, { label: 'Requests', class: 'num' }, { label: 'Errors', class: 'num' }]}
            rows={topUsers.slice(0, 10)}
            row={(u) => (
              <tr>
                <td>{users.get(u.userId)?.email ?? u.userId}</td>
                <NumCell label="Requests" value={u.requests} />
                <NumCell label="Errors" value={u.errors} />
              </tr>
            )}
          />
        </Card>
      </div>
      <p class="hint">
        Metering records requests, bytes and errors per key and minute. It does not record added latency (p50/p99) or counts per route, so
        those are not shown; the gateway benchmark (README, Benchmarks) measures the added latency.
      </p>
    </>,
    { charts: true },
  );
}
