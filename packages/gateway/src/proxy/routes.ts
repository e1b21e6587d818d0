import { InvalidInputError } from '@apigate/kernel';

/** A route as the store keeps it: plain data. */
export interface ProxyRoute {
  id: string;
  /** Path prefix the route answers, e.g. `/weather`; `/` matches every path. Matched on segment boundaries. */
  pathPrefix: string;
  /** Where requests go, e.g. `http://127.0.0.1:3000/v1`; a path here is prepended to the forwarded path. */
  upstreamUrl: string;
  /** Remove `pathPrefix` before forwarding (`/weather/today` -> `/today`). */
  stripPrefix?: boolean;
  /** Methods the route accepts; absent or empty accepts every method. */
  methods?: readonly string[];
  /** Longest wait for the upstream's response headers (and between body chunks) before a 504. */
  timeoutMs?: number;
}

/** A route parsed once, so the hot path does no URL parsing. */
export interface CompiledRoute {
  readonly id: string;
  readonly prefix: string;
  /** `http://host:port`: the key of the connection pool. */
  readonly origin: string;
  /** Path of the upstream URL without a trailing slash; '' for none. */
  readonly basePath: string;
  readonly stripPrefix: boolean;
  /** Upper-case; null accepts every method. */
  readonly methods: ReadonlySet<string> | null;
  /** Value of the `Allow` header of a 405. */
  readonly allow: string;
  readonly timeoutMs: number | undefined;
}

export function compileRoute(route: ProxyRoute): CompiledRoute {
  if (!route.pathPrefix.startsWith('/')) {
    throw new InvalidInputError(`route ${route.id}: path prefix "${route.pathPrefix}" must start with "/"`);
  }
  let url: URL;
  try {
    url = new URL(route.upstreamUrl);
  } catch {
    throw new InvalidInputError(`route ${route.id}: upstream URL "${route.upstreamUrl}" is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidInputError(`route ${route.id}: upstream URL must be http or https, got ${url.protocol}`);
  }
  if (route.timeoutMs !== undefined && !(Number.isInteger(route.timeoutMs) && route.timeoutMs > 0)) {
    throw new InvalidInputError(`route ${route.id}: timeout must be a positive whole number of milliseconds`);
  }
  const methods = route.methods?.length ? new Set(route.methods.map((m) => m.toUpperCase())) : null;
  return {
    id: route.id,
    prefix: route.pathPrefix.length > 1 ? route.pathPrefix.replace(/\/+$/, '') || '/' : '/',
    origin: url.origin,
    basePath: url.pathname.replace(/\/+$/, ''),
    stripPrefix: route.stripPrefix ?? false,
    methods,
    allow: methods ? [...methods].join(', ') : '',
    timeoutMs: route.timeoutMs,
  };
}

/** True when `path` (no query) is `prefix` or below it: `/api` matches `/api` and `/api/x`, not `/apix`. */
export function underPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 47) /* / */;
}

/** The path and query sent upstream for a request target (`req.url`) that `route` matched. */
export function upstreamPath(route: CompiledRoute, target: string): string {
  let rest = target;
  if (route.stripPrefix && route.prefix !== '/') {
    rest = target.slice(route.prefix.length);
    if (rest === '' || rest.charCodeAt(0) === 63 /* ? */) rest = `/${rest}`;
  }
  return route.basePath + rest;
}

/** Longest-prefix route lookup. Rebuild it (cheap) when routes change. */
export class RouteTable {
  readonly #routes: CompiledRoute[];

  constructor(routes: readonly ProxyRoute[]) {
    this.#routes = routes.map(compileRoute).sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** The route for a request target (`req.url`, query allowed), or undefined (a 404). */
  match(target: string): CompiledRoute | undefined {
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    for (const r of this.#routes) if (underPrefix(path, r.prefix)) return r;
    return undefined;
  }

  get size(): number {
    return this.#routes.length;
  }
}
