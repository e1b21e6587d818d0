import { monthOf, type OverheadSummary, type TrafficOverview } from '@apigate/gateway';
import type { Context } from 'hono';
import type { WebContext } from '../context.js';
import { Card, type ChartSpec, Chart, fmt, minuteText, Stat } from '../ui.js';
import { DataTable, NumCell } from '../ui/table.js';
import { minutesChart } from '../portal/usage-view.js';
import { type AdminSession, adminPage } from './session.js';

const MINUTE = 60_000;

/** Every minute of [from, to) with its counts (minutes without traffic are zero), so rates read right. */
function fillMinutes(rows: { minute: Date; requests: number; errors: number }[], from: Date, to: Date) {
  const by = new Map(rows.map((r) => [r.minute.getTime(), r]));
  const out: { minute: string; requests: number; errors: number }[] = [];
  for (let t = from.getTime(); t < to.getTime(); t += MINUTE)
    out.push({ minute: new Date(t).toISOString(), requests: by.get(t)?.requests ?? 0, errors: by.get(t)?.errors ?? 0 });
  return out;
}

/** A quantile as read from the histogram: "at most X ms", "over 256 ms" for the open bucket, "—" without data. */
export function latencyText(s: OverheadSummary, q: 'p50Ms' | 'p99Ms', bucketsMs: readonly number[]): string {
  if (!s.overhead.some((n) => n > 0)) return '—';
  const v = s[q];
  return v === null ? `> ${fmt(bucketsMs.at(-2) ?? 0)} ms` : `${fmt(v)} ms`;
}

/** p50 and p99 added latency of the minutes with traffic; the open bucket is drawn at twice the last bound. */
function latencyChart(t: TrafficOverview): ChartSpec {
  const minutes = t.minutes.filter((m) => m.overhead.some((n) => n > 0));
  const over = 2 * (t.bucketsMs.at(-2) ?? 0);
  return {
    range: [t.from.getTime() / 1000, t.to.getTime() / 1000],
    x: minutes.map((m) => m.minute.getTime() / 1000),
    series: [
      { label: 'p50 ms', values: minutes.map((m) => m.p50Ms ?? over) },
      { label: 'p99 ms', values: minutes.map((m) => m.p99Ms ?? over) },
    ],
    kind: 'lines',
  };
}

/** GET /admin: traffic of the last hour from the per-minute usage, added latency and top routes, the month's top keys and users. */
export async function overviewPage(w: WebContext, c: Context, s: AdminSession): Promise<Response> {
  const d = w.store.domain;
  const now = w.now();
  const to = new Date(Math.floor(now.getTime() / MINUTE) * MINUTE + MINUTE);
  const from = new Date(to.getTime() - 60 * MINUTE);
  const month = monthOf(now);
  const [minutes, topKeys, topUsers, traffic] = await Promise.all([
    d.usage.allMinutes({ from, to }),
    d.usage.topKeys(month, 10),
    d.usage.byUser(month),
    d.traffic.overview({ from, to, limit: 10 }),
  ]);
  const filled = fillMinutes(minutes, from, to);
  const hourRequests = filled.reduce((n, m) => n + m.requests, 0);
  const hourErrors = filled.reduce((n, m) => n + m.errors, 0);
  const last5 = filled.slice(-5).reduce((n, m) => n + m.requests, 0) / 5;
  const keyInfo = new Map(
    (await Promise.all(topKeys.map((k) => d.keys.find(k.keyId)))).filter((k) => k !== undefined).map((k) => [k.id, k]),
  );
  const users = new Map(
    (
      await Promise.all(
        [...new Set([...topKeys.map((k) => k.userId), ...topUsers.slice(0, 10).map((u) => u.userId)])].map((id) => d.users.find(id)),
      )
    )
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
        <Stat
          label="Error rate, last hour"
          value={hourRequests ? `${((hourErrors / hourRequests) * 100).toFixed(1)}%` : '—'}
          id="error-rate"
        />
        <Stat label={`Requests in ${month}`} value={fmt(monthTotal)} />
      </div>
      <Chart id="traffic" caption="Requests and errors per minute, last hour (UTC)" spec={minutesChart(filled)} xLabel={minuteText} />
      <div class="grid two">
        <Stat label="Added latency p50, last hour" value={latencyText(traffic.totals, 'p50Ms', traffic.bucketsMs)} id="latency-p50" />
        <Stat label="Added latency p99, last hour" value={latencyText(traffic.totals, 'p99Ms', traffic.bucketsMs)} id="latency-p99" />
      </div>
      <Chart
        id="latency"
        caption={`Added latency per minute, p50 and p99 in ms (upper bounds of histogram buckets; over ${fmt(traffic.bucketsMs.at(-2) ?? 0)} ms drawn at ${fmt(2 * (traffic.bucketsMs.at(-2) ?? 0))}), last hour (UTC)`}
        spec={latencyChart(traffic)}
        xLabel={minuteText}
      />
      <Card title="Top routes, last hour">
        <DataTable
          id="top-routes"
          card={false}
          columns={[
            { label: 'Route' },
            { label: 'Requests', class: 'num' },
            { label: 'Errors', class: 'num' },
            { label: 'p50', class: 'num' },
            { label: 'p99', class: 'num' },
          ]}
          rows={traffic.routes}
          empty="No traffic in the last hour."
          row={(r) => (
            <tr data-route={r.pathPrefix ?? r.routeId ?? ''}>
              <td>
                {r.pathPrefix ? (
                  <code>{r.pathPrefix}</code>
                ) : r.routeId ? (
                  <span class="muted">deleted route {r.routeId}</span>
                ) : (
                  <span class="muted">no route matched</span>
                )}
              </td>
              <NumCell label="Requests" value={r.requests} />
              <NumCell label="Errors" value={r.errors} />
              <td class="num" data-label="p50">
                {latencyText(r, 'p50Ms', traffic.bucketsMs)}
              </td>
              <td class="num" data-label="p99">
                {latencyText(r, 'p99Ms', traffic.bucketsMs)}
              </td>
            </tr>
          )}
        />
      </Card>
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
        Added latency is the time spent in APIGate itself, without the wait for the upstream, measured per request and kept as a histogram
        per route and minute.
      </p>
    </>,
    { charts: true },
  );
}
