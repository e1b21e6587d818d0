import type { Context } from 'hono';
import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import type { AssetUrls } from './assets.js';
import { CSRF_FIELD } from './csrf.js';

export interface NavItem {
  href: string;
  label: string;
}

export interface PageShell {
  assets: AssetUrls;
  /** Which part of the site: the customer portal or the admin dashboard. */
  area: 'portal' | 'admin';
  nav: NavItem[];
  /** The signed-in person, shown with a sign-out button; none on sign-in pages. */
  who?: { label: string; logoutAction: string; csrf: string } | undefined;
}

/** Security headers for every page; scripts only from our own hashed files. */
export function pageHeaders(c: Context): void {
  c.header(
    'Content-Security-Policy',
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
  );
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('Referrer-Policy', 'same-origin');
  c.header('Cache-Control', 'no-store');
}

/** Renders a full page. */
export async function render(
  c: Context,
  shell: PageShell,
  title: string,
  body: Child,
  opts: { status?: number; narrow?: boolean; charts?: boolean } = {},
) {
  pageHeaders(c);
  const path = c.req.path;
  const html = (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · APIGate ${shell.area === 'admin' ? 'admin' : 'portal'}`}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={shell.assets.appCss} />
        {opts.charts ? <link rel="stylesheet" href={shell.assets.uplotCss} /> : null}
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <div class="bar">
            <a class="brand" href={shell.area === 'admin' ? '/admin' : '/portal'}>
              APIGate {shell.area === 'admin' ? 'admin' : ''}
            </a>
            {shell.nav.length > 0 ? (
              <nav aria-label="Main">
                <ul>
                  {shell.nav.map((n) => (
                    <li>
                      <a href={n.href} aria-current={isCurrent(path, n.href) ? 'page' : undefined}>
                        {n.label}
                      </a>
                    </li>
                  ))}
                </ul>
              </nav>
            ) : null}
            {shell.who ? (
              <form method="post" action={shell.who.logoutAction} class="row">
                <span class="who">{shell.who.label}</span>
                <Csrf token={shell.who.csrf} />
                <button type="submit" class="secondary small">
                  Sign out
                </button>
              </form>
            ) : null}
          </div>
        </header>
        <main id="main" class={opts.narrow ? 'narrow' : undefined} tabindex={-1}>
          <h1>{title}</h1>
          {body}
        </main>
        <footer>APIGate</footer>
        {opts.charts ? <script src={shell.assets.uplotJs} defer /> : null}
        <script src={shell.assets.appJs} defer />
      </body>
    </html>
  );
  return c.html(`<!doctype html>${await html.toString()}`, (opts.status ?? 200) as 200);
}

const isCurrent = (path: string, href: string) =>
  href === '/admin' || href === '/portal' ? path === href : path === href || path.startsWith(`${href}/`);

export const Csrf: FC<{ token: string }> = ({ token }) => <input type="hidden" name={CSRF_FIELD} value={token} />;

export type FlashKind = 'ok' | 'error' | 'info';
export const Flash: FC<{ kind: FlashKind; text?: string | undefined }> = ({ kind, text }) =>
  text ? (
    <div class={`flash ${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {text}
    </div>
  ) : null;

/** A labelled input; the error (if any) is tied to it with aria-describedby. */
export const Field: FC<{
  name: string;
  label: string;
  type?: string;
  value?: string | undefined;
  required?: boolean;
  autocomplete?: string;
  hint?: string;
  error?: string | undefined;
  autofocus?: boolean;
  placeholder?: string;
  minlength?: number;
  inputmode?: 'numeric' | 'text' | 'email' | 'url';
}> = (p) => {
  const id = `f-${p.name}`;
  const described = [p.hint ? `${id}-hint` : '', p.error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div class="field">
      <label for={id}>{p.label}</label>
      <input
        id={id}
        name={p.name}
        type={p.type ?? 'text'}
        value={p.value}
        required={p.required}
        autocomplete={p.autocomplete}
        autofocus={p.autofocus || !!p.error}
        placeholder={p.placeholder}
        minlength={p.minlength}
        inputmode={p.inputmode}
        aria-invalid={p.error ? 'true' : undefined}
        aria-describedby={described}
      />
      {p.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {p.hint}
        </p>
      ) : null}
      {p.error ? (
        <p class="error-text" id={`${id}-error`}>
          {p.error}
        </p>
      ) : null}
    </div>
  );
};

export const Card: FC<PropsWithChildren<{ title?: string; class?: string }>> = ({ title, children, class: cls }) => (
  <section class={`card${cls ? ` ${cls}` : ''}`}>
    {title ? <h2>{title}</h2> : null}
    {children}
  </section>
);

export const Stat: FC<{ label: string; value: string; id?: string }> = ({ label, value, id }) => (
  <div class="card">
    <p class="stat-label">{label}</p>
    <p class="stat" id={id}>
      {value}
    </p>
  </div>
);

export interface ChartSpec {
  /** Unix seconds. */
  x: number[];
  series: { label: string; values: number[] }[];
  kind?: 'bars' | 'lines';
  /** 'day': one tick per day, labelled with the date. */
  unit?: 'day' | 'minute';
  /** The x axis from and to (unix seconds); default: the data's own extent. */
  range?: [number, number];
  height?: number;
}

/**
 * A uPlot chart drawn by app.js from the JSON beside it, with the same numbers in a table
 * (inside <details>) for screen readers and browsers without JavaScript.
 */
export const Chart: FC<{ id: string; caption: string; spec: ChartSpec; xLabel: (t: number) => string }> = ({
  id,
  caption,
  spec,
  xLabel,
}) => (
  <figure class="chart card" data-chart={`${id}-data`} id={id}>
    <figcaption>{caption}</figcaption>
    <div class="plot" aria-hidden="true">
      {spec.x.length === 0 ? <p class="muted">No data yet.</p> : null}
    </div>
    <script type="application/json" id={`${id}-data`} dangerouslySetInnerHTML={{ __html: JSON.stringify(spec).replace(/</g, '\\u003c') }} />
    <details>
      <summary>Data table</summary>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Time (UTC)</th>
              {spec.series.map((s) => (
                <th scope="col" class="num">
                  {s.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {spec.x.map((t, i) => (
              <tr>
                <td>{xLabel(t)}</td>
                {spec.series.map((s) => (
                  <td class="num">{fmt(s.values[i] ?? 0)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  </figure>
);

export const fmt = (n: number) => n.toLocaleString('en-US');
export const money = (cents: number | null | undefined, currency = 'usd') =>
  cents === null || cents === undefined
    ? '—'
    : cents === 0
      ? 'Free'
      : new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() }).format(cents / 100);
export const limitText = (n: number | null | undefined, unit: string) =>
  n === null || n === undefined ? `unlimited ${unit}` : `${fmt(n)} ${unit}`;
export const dateText = (v: string | Date | null | undefined) => (v ? new Date(v).toISOString().replace('T', ' ').slice(0, 16) : '—');
export const dayText = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);
export const minuteText = (t: number) => new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 16);

export const Badge: FC<{ status: string }> = ({ status }) => {
  const kind = ['active', 'succeeded', 'connected', 'healthy', 'applied', 'processed', 'trialing', 'paid'].includes(status)
    ? 'ok'
    : ['suspended', 'revoked', 'failed', 'error', 'unhealthy', 'expired', 'canceled', 'uncollectible'].includes(status)
      ? 'bad'
      : ['pending', 'degraded', 'past_due', 'disabled', 'open'].includes(status)
        ? 'warn'
        : '';
  return <span class={`badge ${kind}`}>{status}</span>;
};
