import { z } from '@apigate/kernel';
import { and, asc, eq, ne } from 'drizzle-orm';
import { type DomainContext, type Tx, writeTx } from './context.js';
import { DomainError, notFound } from './errors.js';
import { newId } from './ids.js';
import { parseInput } from './validate.js';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** Prefixes the gateway answers itself (admin API, portal, well-known files, provider webhooks): a route there would never be reached. */
export const RESERVED_PREFIXES = ['/admin', '/portal', '/.well-known', '/webhooks'];

/** A proxied route. Its fields match the proxy's `ProxyRoute` (`timeoutMs` null: the proxy's default). */
export interface Route {
  id: string;
  /** Starts with `/`, no trailing `/` (except the catch-all `/`); matched on segment boundaries. */
  pathPrefix: string;
  upstreamUrl: string;
  stripPrefix: boolean;
  /** Upper-case; empty accepts every method. */
  methods: string[];
  timeoutMs: number | null;
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const isReserved = (p: string) => RESERVED_PREFIXES.some((r) => p === r || p.startsWith(`${r}/`));
/** A `.` or `..` segment, dots possibly percent-encoded: the proxy resolves those, so a prefix cannot hold one. */
const hasDotSegment = (p: string) => p.split('/').some((s) => /^(?:\.|%2e){1,2}$/i.test(s));
/** Percent-encoded letters, digits, `-._~` (RFC 3986 says to write them plainly) would let `/%61dmin` pass as another path. */
const hasEncodedUnreserved = (p: string) => /%(?:2[de]|3\d|[46][1-9a-f]|[57][0-9a]|5f|7e)/i.test(p);

function hasUserInfo(u: string): boolean {
  try {
    const url = new URL(u);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

const routeFields = {
  pathPrefix: z
    .string({ error: 'expected a path such as /weather' })
    .trim()
    .regex(/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/, {
      error: 'expected a path starting with / (no query, fragment or spaces), such as /weather',
    })
    .transform((p) => (p.length > 1 ? p.replace(/\/+$/, '') || '/' : p))
    .refine((p) => !p.includes('//'), { error: 'must not contain an empty segment (//)' })
    .refine((p) => !hasDotSegment(p), { error: 'must not contain . or .. segments (plain or as %2e)' })
    .refine((p) => !hasEncodedUnreserved(p), { error: 'must write letters, digits and -._~ plainly, not percent-encoded' })
    .refine((p) => !isReserved(p), { error: `is reserved for the gateway itself (${RESERVED_PREFIXES.join(', ')})` }),
  upstreamUrl: z
    .string({ error: 'expected an http(s) URL such as http://127.0.0.1:3000' })
    .trim()
    .refine(
      (u) => {
        try {
          const url = new URL(u);
          return (url.protocol === 'http:' || url.protocol === 'https:') && url.search === '' && url.hash === '';
        } catch {
          return false;
        }
      },
      { error: 'expected an http(s) URL without query or fragment, such as http://127.0.0.1:3000/v1' },
    )
    // Refused rather than stored: the URL is shown in lists and logs, and the proxy never sent it anyway.
    .refine((u) => !hasUserInfo(u), {
      error: 'must not contain a user name or password (user:pass@); put credentials in a header-injecting upstream instead',
    }),
  stripPrefix: z.boolean({ error: 'expected true or false' }),
  methods: z
    .array(
      z
        .string({ error: `expected HTTP methods (${HTTP_METHODS.join(', ')})` })
        .trim()
        .toUpperCase()
        .pipe(z.enum(HTTP_METHODS, { error: `expected HTTP methods (${HTTP_METHODS.join(', ')})` })),
      { error: 'expected a list of HTTP methods (empty for all)' },
    )
    .transform((ms) => [...new Set(ms)]),
  timeoutMs: z
    .number({ error: 'expected milliseconds or null for the default' })
    .int({ error: 'expected a whole number of milliseconds' })
    .min(1, { error: 'must be at least 1 ms' })
    .max(3_600_000, { error: 'at most 3600000 ms (1 hour)' })
    .nullable(),
  enabled: z.boolean({ error: 'expected true or false' }),
};
const createSchema = z
  .object({
    ...routeFields,
    stripPrefix: routeFields.stripPrefix.default(false),
    methods: routeFields.methods.default([]),
    timeoutMs: routeFields.timeoutMs.default(null),
    enabled: routeFields.enabled.default(true),
  })
  .strict();
const updateSchema = z.object(routeFields).partial().strict();

export type CreateRouteInput = z.input<typeof createSchema>;
export type UpdateRouteInput = z.input<typeof updateSchema>;

export class RouteRepository {
  constructor(private readonly ctx: DomainContext) {}

  async create(input: CreateRouteInput): Promise<Route> {
    const v = parseInput(createSchema, input, 'route');
    const { routes } = this.ctx.t;
    return writeTx(this.ctx, async (tx, touch) => {
      await this.assertPrefixFree(tx, v.pathPrefix);
      const now = this.ctx.now();
      const [row] = await tx
        .insert(routes)
        .values({ ...v, id: newId('rt'), createdAt: now, updatedAt: now })
        .returning();
      await touch('routes', 'created', row!.id);
      return row!;
    });
  }

  /** Longest prefix first, the order the proxy matches in. */
  async list(opts: { enabledOnly?: boolean } = {}): Promise<Route[]> {
    const { routes } = this.ctx.t;
    const rows = await this.ctx.db
      .select()
      .from(routes)
      .where(opts.enabledOnly ? eq(routes.enabled, true) : undefined)
      .orderBy(asc(routes.pathPrefix));
    return rows.sort((a, b) => b.pathPrefix.length - a.pathPrefix.length || a.pathPrefix.localeCompare(b.pathPrefix));
  }

  async find(id: string): Promise<Route | undefined> {
    const { routes } = this.ctx.t;
    return (await this.ctx.db.select().from(routes).where(eq(routes.id, id)))[0];
  }

  async get(id: string): Promise<Route> {
    const route = await this.find(id);
    if (!route) throw notFound('route', id);
    return route;
  }

  /** By id, else by path prefix: what the CLI's `<route>` arguments take. */
  async resolve(idOrPrefix: string): Promise<Route> {
    const { routes } = this.ctx.t;
    const row =
      (await this.ctx.db.select().from(routes).where(eq(routes.id, idOrPrefix)))[0] ??
      (
        await this.ctx.db
          .select()
          .from(routes)
          .where(eq(routes.pathPrefix, idOrPrefix.length > 1 ? idOrPrefix.replace(/\/+$/, '') : idOrPrefix))
      )[0];
    if (!row) throw new DomainError('not_found', 'NOT_FOUND', `no route with id or path prefix "${idOrPrefix}"`);
    return row;
  }

  async update(id: string, patch: UpdateRouteInput): Promise<Route> {
    const v = parseInput(updateSchema, patch, 'route');
    const { routes } = this.ctx.t;
    return writeTx(this.ctx, async (tx, touch) => {
      if ((await tx.select({ id: routes.id }).from(routes).where(eq(routes.id, id))).length === 0) throw notFound('route', id);
      if (v.pathPrefix !== undefined) await this.assertPrefixFree(tx, v.pathPrefix, id);
      const [row] = await tx
        .update(routes)
        .set({ ...v, updatedAt: this.ctx.now() })
        .where(eq(routes.id, id))
        .returning();
      await touch('routes', 'updated', id);
      return row!;
    });
  }

  async delete(id: string): Promise<void> {
    const { routes } = this.ctx.t;
    await writeTx(this.ctx, async (tx, touch) => {
      if ((await tx.delete(routes).where(eq(routes.id, id)).returning({ id: routes.id })).length === 0) throw notFound('route', id);
      await touch('routes', 'deleted', id);
    });
  }

  private async assertPrefixFree(tx: Tx, pathPrefix: string, exceptId?: string): Promise<void> {
    const { routes } = this.ctx.t;
    const [same] = await tx
      .select({ id: routes.id })
      .from(routes)
      .where(and(eq(routes.pathPrefix, pathPrefix), exceptId ? ne(routes.id, exceptId) : undefined));
    if (same)
      throw new DomainError(
        'conflict',
        'ROUTE_PREFIX_TAKEN',
        `route: path_prefix: ${pathPrefix} is already the prefix of route ${same.id}`,
        'path_prefix',
      );
  }
}
