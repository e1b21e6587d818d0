import { z } from '@apigate/kernel';
import { and, asc, eq, sql } from 'drizzle-orm';
import { decrypt, encrypt } from '../store/crypto.js';
import type { Tables } from '../store/dialect.js';
import { type DomainContext, writeTx } from './context.js';
import { DomainError, notFound } from './errors.js';
import { newId, randomBase62 } from './ids.js';
import { listPage, type Page, type PageQuery } from './paging.js';
import { parseInput } from './validate.js';

/** Event types the gateway sends; endpoints subscribe to these, to `<group>.*` or to `*`. */
export const WEBHOOK_EVENT_TYPES = [
  'key.created',
  'key.revoked',
  'usage.threshold',
  'usage.limit',
  'plan.changed',
  'subscription.created',
  'subscription.updated',
  'subscription.deleted',
  'payment.succeeded',
  'payment.failed',
  'test',
] as const;
const EVENT_GROUPS = new Set(WEBHOOK_EVENT_TYPES.map((t) => t.split('.')[0]!));

/** Whether an endpoint subscribed to `patterns` wants `type`. */
export function eventMatches(patterns: readonly string[], type: string): boolean {
  return patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}

export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string;
  /** Event types or patterns (`subscription.*`, `*`). */
  events: string[];
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface WebhookDelivery {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  /** The JSON body sent, kept for manual redelivery. */
  payload: string | null;
  status: DeliveryStatus;
  attempts: number;
  responseStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
  lastAttemptAt: Date | null;
  deliveredAt: Date | null;
}

const eventPattern = z
  .string({ error: 'expected event types such as key.created or subscription.*' })
  .trim()
  .refine((e) => e === '*' || (EVENT_GROUPS.has(e.split('.')[0]!) && /^[a-z]+(\.([a-z_]+|\*))?$/.test(e)), {
    error: `expected event types (${WEBHOOK_EVENT_TYPES.join(', ')}), <group>.* or *`,
  });
const fields = {
  url: z
    .string({ error: 'expected an http(s) URL' })
    .trim()
    .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), {
      error: 'expected an http(s) URL such as https://example.com/hooks',
    }),
  description: z.string().trim().max(500, { error: 'at most 500 characters' }),
  events: z.array(eventPattern, { error: 'expected a list of event types' }).min(1, { error: 'subscribe to at least one event type' }),
  enabled: z.boolean({ error: 'expected true or false' }),
};
const createSchema = z
  .object({
    ...fields,
    description: fields.description.default(''),
    enabled: fields.enabled.default(true),
    /** Defaults to a fresh `whsec_` secret. */
    secret: z.string().min(16, { error: 'at least 16 characters' }).optional(),
  })
  .strict();
const updateSchema = z.object(fields).partial().strict();

export type CreateWebhookEndpointInput = z.input<typeof createSchema>;
export type UpdateWebhookEndpointInput = z.input<typeof updateSchema>;

const newWebhookSecret = () => `whsec_${randomBase62(32)}`;
const secretContext = (id: string) => `webhook_endpoint:${id}`;

const endpointColumns = ({ webhookEndpoints }: Tables) => ({
  id: webhookEndpoints.id,
  url: webhookEndpoints.url,
  description: webhookEndpoints.description,
  events: webhookEndpoints.events,
  enabled: webhookEndpoints.enabled,
  createdAt: webhookEndpoints.createdAt,
  updatedAt: webhookEndpoints.updatedAt,
});

/** Outbound webhook endpoints (secrets encrypted at rest with the settings key) and their delivery log. */
export class WebhookRepository {
  constructor(private readonly ctx: DomainContext) {}

  /** `secret` is returned here and by `signingSecret`; it is stored encrypted. */
  async createEndpoint(input: CreateWebhookEndpointInput): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const v = parseInput(createSchema, input, 'webhook endpoint');
    const secret = v.secret ?? newWebhookSecret();
    const id = newId('whe');
    const { webhookEndpoints } = this.ctx.t;
    return writeTx(this.ctx, async (tx, touch) => {
      const now = this.ctx.now();
      const [endpoint] = await tx
        .insert(webhookEndpoints)
        .values({ ...v, id, secret: encrypt(this.ctx.secretKey.key, secret, secretContext(id)), createdAt: now, updatedAt: now })
        .returning(endpointColumns(this.ctx.t));
      await touch('webhook_endpoints', 'created', id);
      return { endpoint: endpoint!, secret };
    });
  }

  async listEndpoints(): Promise<WebhookEndpoint[]> {
    const { webhookEndpoints } = this.ctx.t;
    return this.ctx.db
      .select(endpointColumns(this.ctx.t))
      .from(webhookEndpoints)
      .orderBy(asc(webhookEndpoints.createdAt), asc(webhookEndpoints.id));
  }

  async getEndpoint(id: string): Promise<WebhookEndpoint> {
    const { webhookEndpoints } = this.ctx.t;
    const [row] = await this.ctx.db.select(endpointColumns(this.ctx.t)).from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
    if (!row) throw notFound('webhook endpoint', id);
    return row;
  }

  async updateEndpoint(id: string, patch: UpdateWebhookEndpointInput): Promise<WebhookEndpoint> {
    const v = parseInput(updateSchema, patch, 'webhook endpoint');
    const { webhookEndpoints } = this.ctx.t;
    return writeTx(this.ctx, async (tx, touch) => {
      const [row] = await tx
        .update(webhookEndpoints)
        .set({ ...v, updatedAt: this.ctx.now() })
        .where(eq(webhookEndpoints.id, id))
        .returning(endpointColumns(this.ctx.t));
      if (!row) throw notFound('webhook endpoint', id);
      await touch('webhook_endpoints', 'updated', id);
      return row;
    });
  }

  /** Replaces the signing secret; returns the new one. */
  async rotateSecret(id: string): Promise<string> {
    const secret = newWebhookSecret();
    const { webhookEndpoints } = this.ctx.t;
    await writeTx(this.ctx, async (tx, touch) => {
      const res = await tx
        .update(webhookEndpoints)
        .set({ secret: encrypt(this.ctx.secretKey.key, secret, secretContext(id)), updatedAt: this.ctx.now() })
        .where(eq(webhookEndpoints.id, id))
        .returning({ id: webhookEndpoints.id });
      if (res.length === 0) throw notFound('webhook endpoint', id);
      await touch('webhook_endpoints', 'updated', id);
    });
    return secret;
  }

  /** The decrypted signing secret, for the sender. */
  async signingSecret(id: string): Promise<string> {
    const { webhookEndpoints } = this.ctx.t;
    const [row] = await this.ctx.db.select({ secret: webhookEndpoints.secret }).from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
    if (!row) throw notFound('webhook endpoint', id);
    try {
      return decrypt(this.ctx.secretKey.key, row.secret, secretContext(id));
    } catch {
      throw new DomainError(
        'invalid',
        'SECRET_DECRYPT_FAILED',
        `webhook endpoint ${id}: its secret cannot be decrypted with the ${this.ctx.secretKey.source}; rotate it`,
      );
    }
  }

  /** Enabled endpoints subscribed to `type`. */
  async endpointsFor(type: string): Promise<WebhookEndpoint[]> {
    return (await this.listEndpoints()).filter((e) => e.enabled && eventMatches(e.events, type));
  }

  async deleteEndpoint(id: string): Promise<void> {
    const { webhookEndpoints } = this.ctx.t;
    await writeTx(this.ctx, async (tx, touch) => {
      if ((await tx.delete(webhookEndpoints).where(eq(webhookEndpoints.id, id)).returning({ id: webhookEndpoints.id })).length === 0) {
        throw notFound('webhook endpoint', id);
      }
      await touch('webhook_endpoints', 'deleted', id);
    });
  }

  /** The delivery of an event to an endpoint: created pending, or the existing one (an event is delivered once per endpoint). */
  async recordDelivery(input: {
    endpointId: string;
    eventId: string;
    eventType: string;
    payload?: string | null;
  }): Promise<WebhookDelivery> {
    const { webhookDeliveries } = this.ctx.t;
    const same = and(eq(webhookDeliveries.endpointId, input.endpointId), eq(webhookDeliveries.eventId, input.eventId));
    return this.ctx.tx(async (tx) => {
      const now = this.ctx.now();
      // Another instance recording the same (endpoint, event) at once: the unique index makes one insert win.
      const [created] = await tx
        .insert(webhookDeliveries)
        .values({ ...input, payload: input.payload ?? null, id: newId('whd'), createdAt: now, updatedAt: now })
        .onConflictDoNothing({ target: [webhookDeliveries.endpointId, webhookDeliveries.eventId] })
        .returning();
      return created ?? (await tx.select().from(webhookDeliveries).where(same))[0]!;
    });
  }

  /** Records one attempt: succeeded, or failed for good when `final`, else still pending a retry. */
  async recordAttempt(
    id: string,
    attempt: { ok: boolean; responseStatus?: number | null; error?: string | null; final?: boolean },
  ): Promise<WebhookDelivery> {
    const now = this.ctx.now();
    const { webhookDeliveries } = this.ctx.t;
    // One statement (attempts counted in SQL): two instances recording at once both count.
    const [row] = await this.ctx.db
      .update(webhookDeliveries)
      .set({
        attempts: sql`${webhookDeliveries.attempts} + 1`,
        status: attempt.ok ? 'succeeded' : attempt.final ? 'failed' : 'pending',
        responseStatus: attempt.responseStatus ?? null,
        lastError: attempt.ok ? null : (attempt.error ?? null),
        lastAttemptAt: now,
        updatedAt: now,
        ...(attempt.ok ? { deliveredAt: now } : {}),
      })
      .where(eq(webhookDeliveries.id, id))
      .returning();
    if (!row) throw notFound('webhook delivery', id);
    return row;
  }

  async getDelivery(id: string): Promise<WebhookDelivery> {
    const { webhookDeliveries } = this.ctx.t;
    const [row] = await this.ctx.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
    if (!row) throw notFound('webhook delivery', id);
    return row;
  }

  /** Oldest first. */
  async listDeliveries(q: PageQuery & { endpointId?: string; status?: DeliveryStatus } = {}): Promise<Page<WebhookDelivery>> {
    const { webhookDeliveries } = this.ctx.t;
    const filters = [
      q.endpointId !== undefined ? eq(webhookDeliveries.endpointId, q.endpointId) : undefined,
      q.status !== undefined ? eq(webhookDeliveries.status, q.status) : undefined,
    ];
    return listPage(q, 'webhook delivery list', webhookDeliveries, filters, (where, order, n) =>
      this.ctx.db
        .select()
        .from(webhookDeliveries)
        .where(where)
        .orderBy(...order)
        .limit(n),
    );
  }
}
