import { type ChartSpec, dayText } from '../ui.js';

export interface DayRow {
  day: string;
  requests: number;
  errors: number;
}

/** Every UTC day of [from, to) with its counts (zero when the API has no row for it), as chart data. */
export function daysChart(from: string, to: string, rows: DayRow[]): ChartSpec {
  const DAY = 86_400_000;
  const byDay = new Map(rows.map((r) => [new Date(r.day).getTime(), r]));
  const x: number[] = [];
  const requests: number[] = [];
  const errors: number[] = [];
  for (let t = new Date(from).getTime(); t < new Date(to).getTime(); t += DAY) {
    x.push(t / 1000);
    requests.push(byDay.get(t)?.requests ?? 0);
    errors.push(byDay.get(t)?.errors ?? 0);
  }
  return {
    x,
    series: [
      { label: 'requests', values: requests },
      { label: 'errors', values: errors },
    ],
    kind: 'bars',
    unit: 'day',
    range: [new Date(from).getTime() / 1000 - 43_200, new Date(to).getTime() / 1000 - 43_200],
  };
}

/** Per-minute rows as chart data (only minutes with traffic have rows). */
export function minutesChart(
  rows: { minute: string; requests: number; errors: number }[],
  range?: { from: string | Date; to: string | Date },
): ChartSpec {
  return {
    ...(range ? { range: [new Date(range.from).getTime() / 1000, new Date(range.to).getTime() / 1000] as [number, number] } : {}),
    x: rows.map((r) => new Date(r.minute).getTime() / 1000),
    series: [
      { label: 'requests', values: rows.map((r) => r.requests) },
      { label: 'errors', values: rows.map((r) => r.errors) },
    ],
    kind: 'bars',
  };
}

export { dayText };
