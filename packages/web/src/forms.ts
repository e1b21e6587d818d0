import type { Context } from 'hono';

/** The posted form's text fields (files ignored), trimmed of nothing: passwords keep their spaces. */
export async function formFields(c: Context): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** A 303 to `path` with a short status code the next page turns into a message. */
export const seeOther = (c: Context, path: string, note?: string) =>
  c.redirect(note ? `${path}${path.includes('?') ? '&' : '?'}note=${encodeURIComponent(note)}` : path, 303);
