import type { VerifiedWebhook, WebhookInput } from '@apigate/kernel';
import { and, asc, eq, getTableColumns, type SQL, sql } from 'drizzle-orm';
import { afterCursor, type PageQuery, pageLimit } from '../domain/paging.js';
import type { AppDatabase } from '../store/db.js';
import { paymentEvents } from '../store/schema.js';

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

type Row = typeof paymentEvents.$inferSelect;
const fromRow = ({ rawBody, headers: _h, ...r }: Row): RecordedPaymentEvent => ({ ...r, hasBody: rawBody !== null });
const { rawBody: _rawBody, headers: _headers, ...summaryColumns } = getTableColumns(paymentEvents);
/** The row without its body (lists stay small), and whether it has one. */
const summary = { ...summaryColumns, hasBody: sql<number>`${paymentEvents.rawBody} is not null` };
const fromSummary = (r: Omit<Row, 'rawBody' | 'headers'> & { hasBody: number }): RecordedPaymentEvent => ({ ...r, hasBody: Boolean(r.hasBody) });
const sqlIncrement = () => sql`${paymentEvents.attempts} + 1`;

/** Backoff before try `attempt + 1`: base * 2^(attempt-1), at most an hour. */
export function retryDelayMs(attempt: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), 3_600_000);
}

/**
 * The `payment_events` table as the payment inbox: the route records verified bodies here
 * before answering 200, the worker moves each row to applied, skipped or failed.
 */
export class PaymentInbox {
  constructor(private readonly db: AppDatabase) {}

  /**
   * Stores a verified event with its raw body and headers; false when (provider, event id) is
   * already recorded (a provider's redelivery).
   */
  record(provider: string, v: VerifiedWebhook, input: WebhookInput, now = new Date()): boolean {
    const res = this.db
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
      .run();
    return res.changes > 0;
  }

  find(provider: string, eventId: string): RecordedPaymentEvent | undefined {
    const row = this.db.select().from(paymentEvents).where(this.#key(provider, eventId)).get();
    return row && fromRow(row);
  }

  /** Rows with this event id, any provider (the CLI and admin API take a bare event id). */
  findById(eventId: string): RecordedPaymentEvent[] {
    return this.db.select().from(paymentEvents).where(eq(paymentEvents.eventId, eventId)).all().map(fromRow);
  }

  /** The stored body and headers, as `normalizeWebhook` takes them; undefined for a row without a body. */
  input(provider: string, eventId: string): WebhookInput | undefined {
    const row = this.db.select({ rawBody: paymentEvents.rawBody, headers: paymentEvents.headers }).from(paymentEvents).where(this.#key(provider, eventId)).get();
    if (!row?.rawBody) return undefined;
    return { rawBody: new Uint8Array(row.rawBody), headers: row.headers ? (JSON.parse(row.headers) as Record<string, string>) : {} };
  }

  /** Oldest received first, paged by an opaque cursor. */
  list(q: PageQuery & { status?: PaymentEventStatus; provider?: string } = {}): { items: RecordedPaymentEvent[]; cursor?: string } {
    const limit = pageLimit(q.limit, 'payment events');
    const filters: (SQL | undefined)[] = [
      q.status ? eq(paymentEvents.status, q.status) : undefined,
      q.provider ? eq(paymentEvents.provider, q.provider) : undefined,
      q.cursor !== undefined ? afterCursor(q.cursor, paymentEvents.receivedAt, paymentEvents.eventId, 'payment events') : undefined,
    ];
    const rows = this.db
      .select(summary)
      .from(paymentEvents)
      .where(and(...filters))
      .orderBy(asc(paymentEvents.receivedAt), asc(paymentEvents.eventId))
      .limit(limit + 1)
      .all()
      .map(fromSummary);
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return rows.length > limit && last ? { items, cursor: Buffer.from(JSON.stringify([last.receivedAt.getTime(), last.eventId])).toString('base64url') } : { items };
  }

  /** Every `queued` row (a start re-queues them all; the due time decides the delay). */
  queued(): RecordedPaymentEvent[] {
    return this.db.select(summary).from(paymentEvents).where(eq(paymentEvents.status, 'queued')).orderBy(asc(paymentEvents.occurredAt)).all().map(fromSummary);
  }

  /** Counts a try before it runs, so a crash mid-try still uses it up. */
  startAttempt(provider: string, eventId: string): number {
    const row = this.db
      .update(paymentEvents)
      .set({ attempts: sqlIncrement(), nextAttemptAt: null })
      .where(this.#key(provider, eventId))
      .returning({ attempts: paymentEvents.attempts })
      .get();
    return row?.attempts ?? 0;
  }

  finish(provider: string, eventId: string, status: 'applied' | 'skipped', now = new Date()): void {
    this.db.update(paymentEvents).set({ status, appliedAt: now, nextAttemptAt: null }).where(this.#key(provider, eventId)).run();
  }

  /** A retryable failure: stays queued until `nextAttemptAt`. */
  retryLater(provider: string, eventId: string, error: string, nextAttemptAt: Date): void {
    this.db.update(paymentEvents).set({ status: 'queued', lastError: error, nextAttemptAt }).where(this.#key(provider, eventId)).run();
  }

  fail(provider: string, eventId: string, error: string): void {
    this.db.update(paymentEvents).set({ status: 'failed', lastError: error, nextAttemptAt: null }).where(this.#key(provider, eventId)).run();
  }

  /** Sends a failed (or stuck queued) row back to the queue with a fresh set of tries. False when it cannot be. */
  requeue(provider: string, eventId: string, now = new Date()): boolean {
    return (
      this.db
        .update(paymentEvents)
        .set({ status: 'queued', attempts: 0, nextAttemptAt: now })
        .where(this.#key(provider, eventId))
        .run().changes > 0
    );
  }

  #key(provider: string, eventId: string): SQL {
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
