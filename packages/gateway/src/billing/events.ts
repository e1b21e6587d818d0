import type { VerifiedWebhook, WebhookInput } from '@apigate/kernel';
import { and, asc, eq, getTableColumns, type SQL, sql } from 'drizzle-orm';
import { afterCursor, type PageQuery, pageLimit } from '../domain/paging.js';
import { affectedRows, type StoreDb, type Tables } from '../store/dialect.js';

/** The queue the inbox rows are processed from. A job carries only `{ provider, eventId }`. */
export const PAYMENT_QUEUE = 'payment.events';

export type PaymentEventStatus = 'queued' | 'applied' | 'skipped' | 'failed';
export const PAYMENT_EVENT_STATUSES: readonly PaymentEventStatus[] = ['queued', 'applied', 'skipped', 'failed'];

/** A `payment.events` job: which inbox row to process. The body stays in the database. */
export interface PaymentJob {
  provider: string;
  eventId: string;
}

/** One inbox row, without the body (see `input()` for it). */
export interface RecordedPaymentEvent {
  provider: string;
  eventId: string;
  /** The provider's own event name. */
  type: string;
  occurredAt: Date;
  status: PaymentEventStatus;
  receivedAt: Date;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: Date | null;
  appliedAt: Date | null;
  /** False for rows recorded before the inbox kept bodies: they cannot be processed again. */
  hasBody: boolean;
}

/** Request headers never stored with a body: credentials and cookies are not the provider's. */
const UNSTORED_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization', 'x-api-key']);

/** Keeps what normalisation may need (the provider's signature and event headers, content type). */
export function storedHeaders(headers: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || UNSTORED_HEADERS.has(k.toLowerCase())) continue;
    out[k.toLowerCase()] = v;
  }
  return out;
}

type Row = Tables['paymentEvents']['$inferSelect'];
const fromRow = ({ rawBody, headers: _h, ...r }: Row): RecordedPaymentEvent => ({ ...r, hasBody: rawBody !== null });
/** The row without its body (lists stay small), and whether it has one. */
function summary(paymentEvents: Tables['paymentEvents']) {
  const { rawBody: _rawBody, headers: _headers, ...summaryColumns } = getTableColumns(paymentEvents);
  // `is not null` is 0/1 on SQLite and a boolean on PostgreSQL: Boolean() reads both.
  return { ...summaryColumns, hasBody: sql<number | boolean>`${paymentEvents.rawBody} is not null` };
}
const fromSummary = (r: Omit<Row, 'rawBody' | 'headers'> & { hasBody: number | boolean }): RecordedPaymentEvent => ({
  ...r,
  hasBody: Boolean(r.hasBody),
});

/** Backoff before try `attempt + 1`: base * 2^(attempt-1), at most an hour. */
export function retryDelayMs(attempt: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), 3_600_000);
}

/**
 * The `payment_events` table as the payment inbox: the route records verified bodies here
 * before answering 200, the worker moves each row to applied, skipped or failed.
 */
export class PaymentInbox {
  constructor(private readonly s: StoreDb) {}

  private get db() {
    return this.s.db;
  }

  /**
   * Stores a verified event with its raw body and headers; false when (provider, event id) is
   * already recorded (a provider's redelivery).
   */
  async record(provider: string, v: VerifiedWebhook, input: WebhookInput, now = new Date()): Promise<boolean> {
    const { paymentEvents } = this.s.t;
    const res = await this.db
      .insert(paymentEvents)
      .values({
        provider,
        eventId: v.id,
        type: v.type,
        occurredAt: v.occurredAt,
        status: 'queued',
        receivedAt: now,
        rawBody: Buffer.from(input.rawBody),
        headers: JSON.stringify(storedHeaders(input.headers)),
      })
      .onConflictDoNothing()
      .returning({ id: paymentEvents.eventId });
    return res.length > 0;
  }

  async find(provider: string, eventId: string): Promise<RecordedPaymentEvent | undefined> {
    const [row] = await this.db.select().from(this.s.t.paymentEvents).where(this.#key(provider, eventId));
    return row && fromRow(row);
  }

  /** Rows with this event id, any provider (the CLI and admin API take a bare event id). */
  async findById(eventId: string): Promise<RecordedPaymentEvent[]> {
    const { paymentEvents } = this.s.t;
    return (await this.db.select().from(paymentEvents).where(eq(paymentEvents.eventId, eventId))).map(fromRow);
  }

  /** The stored body and headers, as `normalizeWebhook` takes them; undefined for a row without a body. */
  async input(provider: string, eventId: string): Promise<WebhookInput | undefined> {
    const { paymentEvents } = this.s.t;
    const [row] = await this.db
      .select({ rawBody: paymentEvents.rawBody, headers: paymentEvents.headers })
      .from(paymentEvents)
      .where(this.#key(provider, eventId));
    if (!row?.rawBody) return undefined;
    return { rawBody: new Uint8Array(row.rawBody), headers: row.headers ? (JSON.parse(row.headers) as Record<string, string>) : {} };
  }

  /** Oldest received first, paged by an opaque cursor. */
  async list(
    q: PageQuery & { status?: PaymentEventStatus; provider?: string } = {},
  ): Promise<{ items: RecordedPaymentEvent[]; cursor?: string }> {
    const { paymentEvents } = this.s.t;
    const limit = pageLimit(q.limit, 'payment events');
    const filters: (SQL | undefined)[] = [
      q.status ? eq(paymentEvents.status, q.status) : undefined,
      q.provider ? eq(paymentEvents.provider, q.provider) : undefined,
      q.cursor !== undefined ? afterCursor(q.cursor, paymentEvents.receivedAt, paymentEvents.eventId, 'payment events') : undefined,
    ];
    const rows = (
      await this.db
        .select(summary(paymentEvents))
        .from(paymentEvents)
        .where(and(...filters))
        .orderBy(asc(paymentEvents.receivedAt), asc(paymentEvents.eventId))
        .limit(limit + 1)
    ).map(fromSummary);
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return rows.length > limit && last
      ? { items, cursor: Buffer.from(JSON.stringify([last.receivedAt.getTime(), last.eventId])).toString('base64url') }
      : { items };
  }

  /** Every `queued` row (a start re-queues them all; the due time decides the delay). */
  async queued(): Promise<RecordedPaymentEvent[]> {
    const { paymentEvents } = this.s.t;
    return (
      await this.db
        .select(summary(paymentEvents))
        .from(paymentEvents)
        .where(eq(paymentEvents.status, 'queued'))
        .orderBy(asc(paymentEvents.occurredAt))
    ).map(fromSummary);
  }

  /**
   * Claims the row for one try: attempts + 1, due time cleared; returns the try's number. With
   * `seen` (the attempts the caller read with the row still queued) it is a claim: only one
   * caller moves the row from `seen` (instances sharing the database never run one event twice
   * at once); the others get undefined.
   */
  async startAttempt(provider: string, eventId: string, seen?: number): Promise<number | undefined> {
    const { paymentEvents } = this.s.t;
    const claim = seen === undefined ? undefined : and(eq(paymentEvents.status, 'queued'), eq(paymentEvents.attempts, seen));
    const [row] = await this.db
      .update(paymentEvents)
      .set({ attempts: sql`${paymentEvents.attempts} + 1`, nextAttemptAt: null })
      .where(and(this.#key(provider, eventId), claim))
      .returning({ attempts: paymentEvents.attempts });
    return row?.attempts;
  }

  async finish(provider: string, eventId: string, status: 'applied' | 'skipped', now = new Date()): Promise<void> {
    await this.db.update(this.s.t.paymentEvents).set({ status, appliedAt: now, nextAttemptAt: null }).where(this.#key(provider, eventId));
  }

  /** A retryable failure: stays queued until `nextAttemptAt`. */
  async retryLater(provider: string, eventId: string, error: string, nextAttemptAt: Date): Promise<void> {
    await this.db
      .update(this.s.t.paymentEvents)
      .set({ status: 'queued', lastError: error, nextAttemptAt })
      .where(this.#key(provider, eventId));
  }

  async fail(provider: string, eventId: string, error: string): Promise<void> {
    await this.db
      .update(this.s.t.paymentEvents)
      .set({ status: 'failed', lastError: error, nextAttemptAt: null })
      .where(this.#key(provider, eventId));
  }

  /** Sends a failed (or stuck queued) row back to the queue with a fresh set of tries. False when it cannot be. */
  async requeue(provider: string, eventId: string, now = new Date()): Promise<boolean> {
    return (
      affectedRows(
        await this.db
          .update(this.s.t.paymentEvents)
          .set({ status: 'queued', attempts: 0, nextAttemptAt: now })
          .where(this.#key(provider, eventId)),
      ) > 0
    );
  }

  #key(provider: string, eventId: string): SQL {
    const { paymentEvents } = this.s.t;
    return and(eq(paymentEvents.provider, provider), eq(paymentEvents.eventId, eventId))!;
  }
}

/**
 * The job id of a row's next try: the same for the same (attempts, due time), so a re-queue of
 * a job still waiting is a no-op, and new for a retry or a replay.
 */
export function jobIdOf(e: Pick<RecordedPaymentEvent, 'provider' | 'eventId' | 'attempts' | 'nextAttemptAt'>): string {
  return `${e.provider}:${e.eventId}:${e.attempts}:${e.nextAttemptAt?.getTime() ?? 0}`;
}
