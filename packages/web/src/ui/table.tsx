import type { Child, FC } from 'hono/jsx';
import { Csrf, fmt } from '../ui.js';

export interface Column {
  label: string;
  /** 'num' right-aligns, 'hide-sm' hides the column on small screens. */
  class?: string;
  /** An action column: its heading is muted (the buttons say what they do). */
  action?: boolean;
}

/**
 * The pages' data table: a scrolling wrapper (a card of its own unless `card` is false, inside one),
 * an optional left-aligned caption, column headings and the caller's rows. `empty` is shown when
 * there are no rows: under the table, or as a table row with `emptyRow`.
 */
export function DataTable<T>(p: {
  id?: string;
  caption?: Child;
  columns: Column[];
  rows: readonly T[];
  row: (item: T) => Child;
  empty?: string | undefined;
  emptyRow?: boolean;
  card?: boolean;
  /** Below the table, inside the wrapper (a next-page link, a note). */
  footer?: Child;
}) {
  const empty = p.rows.length === 0 ? p.empty : undefined;
  return (
    <div class={p.card === false ? 'table-wrap' : 'table-wrap card'}>
      <table id={p.id}>
        {p.caption !== undefined ? (
          <caption class="muted" style="text-align:left">
            {p.caption}
          </caption>
        ) : null}
        <thead>
          <tr>
            {p.columns.map((col) => (
              <th scope="col" class={col.class}>
                {col.action ? <span class="muted">{col.label}</span> : col.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {empty && p.emptyRow ? (
            <tr>
              <td colspan={p.columns.length} class="muted">
                {empty}
              </td>
            </tr>
          ) : null}
          {p.rows.map(p.row)}
        </tbody>
      </table>
      {empty && !p.emptyRow ? <p class="muted">{empty}</p> : null}
      {p.footer ?? null}
    </div>
  );
}

/** A number cell; `data-label` names it where small screens stack the cells. */
export const NumCell: FC<{ label: string; value: number }> = ({ label, value }) => (
  <td class="num" data-label={label}>
    {fmt(value)}
  </td>
);

/**
 * A one-button POST form (with the CSRF field) for row actions: revoke, remove, retry, replay.
 * `confirm` asks first (app.js reads data-confirm); children are extra hidden inputs.
 */
export const PostButton: FC<{
  action: string;
  csrf: string;
  label: string;
  class: string;
  ariaLabel?: string | undefined;
  confirm?: string | undefined;
  children?: Child;
}> = (p) => (
  <form method="post" action={p.action} data-confirm={p.confirm}>
    <Csrf token={p.csrf} />
    {p.children}
    <button type="submit" class={p.class} aria-label={p.ariaLabel}>
      {p.label}
    </button>
  </form>
);
