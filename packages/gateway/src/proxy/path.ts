/**
 * Request-path normalisation for the proxy, done once before route matching, so an upstream that
 * resolves dot segments itself (nginx, express, most frameworks) can never be walked above the
 * route's prefix or the upstream URL's base path.
 *
 * - Runs of `/` collapse to one (`//` tricks read the same as nginx's `merge_slashes` would).
 * - RFC 3986 5.2.4 remove_dot_segments, with percent-encoded dots (`%2e`, `%2E`) counted as dots.
 * - `%2F` (an encoded `/`) stays inside its segment: never a separator here.
 * - Refused: a backslash (some servers read it as `/`), a `..` above the root, a segment that
 *   decodes to something containing a `..` piece between `/` or `\` (`..%2F..%2Fx`), bad
 *   percent-encoding, and a target that is not origin-form (`http://...`, `*`).
 */

export type NormalizedTarget =
  | {
      ok: true;
      /** Normalised path plus the original query (`?...` or ''). */
      target: string;
      path: string;
      /**
       * The path as written (slashes collapsed, dots decoded, dot segments kept literally), set
       * only when it had dot segments: the route it names is the one the path must stay under.
       */
      lexical?: string;
    }
  | { ok: false; reason: string };

const SLASH = 47;
const DOT = 46;
const PERCENT = 37;
const BACKSLASH = 92;

/** Fast check: nothing that normalisation would change or refuse (the common case). */
function isPlain(path: string): boolean {
  if (path.charCodeAt(0) !== SLASH) return false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT || c === BACKSLASH) return false;
    if (c === SLASH) {
      const n = path.charCodeAt(i + 1);
      if (n === SLASH || n === DOT) return false;
    }
  }
  return true;
}

/** `.` and `..` with any of their dots written as `%2e`/`%2E`; else the segment itself. */
function dotForm(seg: string): string {
  if (seg.length < 1 || seg.length > 6) return seg;
  const d = seg.replace(/%2e/gi, '.');
  return d === '.' || d === '..' ? d : seg;
}

/** Why a (non-dot) segment is refused, or undefined when it is fine. */
function badSegment(seg: string): string | undefined {
  if (!seg.includes('%')) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(seg);
  } catch {
    return 'the path has malformed percent-encoding';
  }
  if (/[\\/]/.test(decoded) && decoded.split(/[\\/]/).some((p) => p === '..')) return 'the path climbs with an encoded separator';
  if (decoded.includes('\\')) return 'the path contains a backslash';
  return undefined;
}

/** Normalises a request target (`req.url`); see the module comment for the rules. */
export function normalizeTarget(target: string): NormalizedTarget {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  if (isPlain(path)) return { ok: true, target, path };
  if (path.charCodeAt(0) !== SLASH) return { ok: false, reason: 'the request target must be a path starting with /' };
  if (path.includes('\\')) return { ok: false, reason: 'the path contains a backslash' };
  const raw = path.split('/').filter((s, i, all) => s !== '' || i === all.length - 1); // collapse `//`, keep a trailing `/`
  const out: string[] = [];
  const lexical: string[] = [];
  let dots = false;
  for (let i = 0; i < raw.length; i++) {
    const seg = dotForm(raw[i]!);
    const last = i === raw.length - 1;
    if (seg === '.' || seg === '..') {
      dots = true;
      lexical.push(seg);
      if (seg === '..') {
        if (out.length === 0) return { ok: false, reason: 'the path climbs above the root' };
        out.pop();
      }
      if (last) out.push(''); // `/a/b/..` is `/a/`
      continue;
    }
    const why = badSegment(seg);
    if (why) return { ok: false, reason: why };
    out.push(seg);
    lexical.push(seg);
  }
  const norm = `/${out.join('/')}`;
  const query = q === -1 ? '' : target.slice(q);
  return { ok: true, target: norm + query, path: norm, ...(dots ? { lexical: `/${lexical.join('/')}` } : {}) };
}
