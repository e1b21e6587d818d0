import { snakeCase } from './validate.js';

/**
 * The JSON shape the admin API answers with and `apigate ... --json` prints: snake_case
 * keys, times as ISO 8601 strings, null kept. Works on any domain object or array of them.
 */
export function toWire(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toWire);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [snakeCase(k), toWire(v)]));
  }
  return value;
}

/** Top-level `snake_case` keys of a request body to the domain's camelCase (values untouched). */
export function fromWire(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  return Object.fromEntries(Object.entries(body).map(([k, v]) => [k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()), v]));
}
