import { describeError, type EmailMessage, type Logger, silentLogger } from '@apigate/kernel';
import type { Domain } from '../domain/domain.js';
import type { QuotaResult } from '../limits/quota.js';
import type { WebhookDispatcher } from '../delivery/outbound-webhooks.js';

export interface QuotaNoticeFacts {
  name: string;
  planName: string;
  used: number;
  limit: number;
  /** 0.8, 1... */
  threshold: number;
  /** `YYYY-MM`. */
  period: string;
  resetAt: Date;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The email a user gets when their monthly quota reaches a threshold. */
export function renderQuotaEmail(f: QuotaNoticeFacts): Pick<EmailMessage, 'subject' | 'text' | 'html'> {
  const pct = Math.round(f.threshold * 100);
  const full = f.threshold >= 1;
  const resets = f.resetAt.toISOString().replace('T', ' ').slice(0, 16);
  const subject = full ? `Your API quota for ${f.period} is used up` : `You have used ${pct}% of your API quota for ${f.period}`;
  const lines = [
    `Hello${f.name ? ` ${f.name}` : ''},`,
    '',
    full
      ? `you have used all ${f.limit} requests of your ${f.planName} plan for ${f.period}. Further requests are refused until the quota resets.`
      : `you have used ${f.used} of the ${f.limit} requests of your ${f.planName} plan for ${f.period} (${pct}%).`,
    `The quota resets on ${resets} UTC.`,
    '',
    'To keep going without interruption, move to a larger plan.',
  ];
  const html = `<p>${lines
    .filter((l) => l !== '')
    .map(escapeHtml)
    .join('</p>\n<p>')}</p>`;
  return { subject, text: `${lines.join('\n')}\n`, html };
}

export type SendEmail = (msg: EmailMessage, opts: { idempotencyId: string }) => Promise<unknown>;

export interface QuotaNoticesOptions {
  domain: Domain;
  /** The delivery outbox's `sendEmail`; without it no email is sent (logged once). */
  sendEmail?: SendEmail | undefined;
  webhooks?: WebhookDispatcher | undefined;
  logger?: Logger;
}

/**
 * What happens when a user's monthly count reaches 80% or 100% of the quota: one email (through
 * the outbox, so it is queued and retried) and a `usage.threshold` or `usage.limit` webhook.
 * Both carry the id `quota:<user>:<period>:<percent>`: the outbox's idempotency id and the
 * webhook event id, so a second report of the same crossing (another instance, a restart right
 * at the mark) sends nothing new while the queue and the delivery log remember it.
 */
export class QuotaNotices {
  readonly #o: QuotaNoticesOptions;
  readonly #logger: Logger;
  readonly #pending = new Set<Promise<void>>();
  #warnedNoEmail = false;

  constructor(opts: QuotaNoticesOptions) {
    this.#o = opts;
    this.#logger = opts.logger ?? silentLogger();
  }

  /** Off the hot path: returns at once; close() waits for what it started. */
  report(userId: string, planName: string, q: QuotaResult): void {
    if (q.limit === null || q.crossed.length === 0) return;
    const p = this.#send(userId, planName, q).catch((err: unknown) =>
      this.#logger.error({ user: userId, period: q.period }, `cannot send the quota notice: ${describeError(err)}`),
    );
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  async #send(userId: string, planName: string, q: QuotaResult): Promise<void> {
    const limit = q.limit!;
    const user = await this.#o.domain.users.find(userId);
    for (const threshold of q.crossed) {
      const pct = Math.round(threshold * 100);
      const id = `quota:${userId}:${q.period}:${pct}`;
      const resetAt = new Date(q.resetAt);
      const used = Math.max(q.used, Math.ceil(limit * threshold));
      this.#o.webhooks?.emitLater(
        threshold >= 1 ? 'usage.limit' : 'usage.threshold',
        { user_id: userId, period: q.period, threshold: pct, used, limit, resets_at: resetAt.toISOString() },
        { id },
      );
      if (!user) continue; // deleted meanwhile: nobody to write to
      if (!this.#o.sendEmail) {
        if (!this.#warnedNoEmail) this.#logger.warn('quota notices are not emailed: no queue provider, so no email outbox');
        this.#warnedNoEmail = true;
        continue;
      }
      const body = renderQuotaEmail({ name: user.name, planName, used, limit, threshold, period: q.period, resetAt });
      await this.#o.sendEmail({ to: user.email, ...body }, { idempotencyId: id });
      this.#logger.info({ user: userId, period: q.period, threshold: pct }, `quota notice (${pct}%) queued`);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}
