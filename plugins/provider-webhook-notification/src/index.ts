import { assertNotification, defineProvider, fields, type Health, type Notification, type NotificationProvider, z } from '@apigate/kernel';
import { Agent, request } from 'undici';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signWebhookPayload, TIMESTAMP_HEADER, type WebhookNotificationPayload } from './signature.js';

export * from './signature.js';

export const config = z.object({
  url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).describe('the receiver, e.g. https://example.com/webhook'),
  secret: z
    .string()
    .min(16, 'expected at least 16 characters')
    .describe('a shared secret of at least 16 characters, e.g. from `openssl rand -hex 32`'),
  timeoutMs: fields.int({ min: 100 }).default(10_000),
});

export type WebhookConfig = z.infer<typeof config>;

const USER_AGENT = 'APIGate-Webhook/1';

/** The JSON body for a notification (fields the notification lacks are left out). */
export function webhookPayload(n: Notification): WebhookNotificationPayload {
  return {
    id: n.id,
    type: n.event,
    timestamp: n.occurredAt.toISOString(),
    data: {
      title: n.title,
      ...(n.text !== undefined ? { text: n.text } : {}),
      severity: n.severity,
      ...(n.fields ? { fields: n.fields } : {}),
      ...(n.url !== undefined ? { url: n.url } : {}),
    },
  };
}

class WebhookNotification implements NotificationProvider {
  private readonly agent: Agent;
  private readonly host: string;

  constructor(private readonly cfg: WebhookConfig) {
    this.host = new URL(cfg.url).host;
    // One keep-alive pool per instance, so close() releases exactly our sockets.
    this.agent = new Agent({ connect: { timeout: cfg.timeoutMs }, headersTimeout: cfg.timeoutMs, bodyTimeout: cfg.timeoutMs });
  }

  /** Retryable follows the kernel's rule for `status` (408, 429, 5xx) unless given; the kernel makes it a masked ProviderError. */
  private fail(message: string, facts: { status?: number; retryable?: boolean }): Error {
    return Object.assign(new Error(message), facts);
  }

  /**
   * 2xx is delivered. 408, 429 and 5xx, and no answer at all, are retryable; other statuses
   * (including redirects, which are not followed: a signed POST should not wander) are final.
   */
  async notify(n: Notification): Promise<void> {
    assertNotification(n);
    const body = JSON.stringify(webhookPayload(n));
    // Signed at send time, so each retry carries a fresh timestamp that passes the receiver's replay window.
    const timestamp = Math.floor(Date.now() / 1000);
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(this.cfg.url, {
        method: 'POST',
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.cfg.timeoutMs),
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          [EVENT_ID_HEADER]: n.id,
          [TIMESTAMP_HEADER]: String(timestamp),
          [SIGNATURE_HEADER]: signWebhookPayload(this.cfg.secret, timestamp, body),
        },
        body,
      });
    } catch (err) {
      throw this.fail(`could not reach ${this.host}: ${describeNetworkError(err)}`, { retryable: true });
    }
    const status = res.statusCode;
    // Always read the body, so the connection goes back to the pool.
    const answer = (await res.body.text().catch(() => '')).trim().slice(0, 200);
    if (status >= 200 && status < 300) return;
    const retryAfter = res.headers['retry-after'];
    const wait = status === 429 && retryAfter ? `, retry after ${retryAfter} s` : '';
    const hint = status >= 300 && status < 400 ? ' (redirects are not followed: set NOTIFICATION_WEBHOOK_URL to the final address)' : '';
    throw this.fail(`${this.host} answered ${status}${answer ? `: ${answer}` : ''}${wait}${hint}`, { status });
  }

  /**
   * Side-effect free: a HEAD request to the URL (safe by HTTP's rules, so receivers do not act on
   * it) shows that the host resolves, connects and answers. Any answer below 500 counts as
   * connected: most receivers only accept POST and say 404 or 405 to HEAD.
   */
  async check(signal: AbortSignal): Promise<Health> {
    try {
      const res = await request(this.cfg.url, { method: 'HEAD', dispatcher: this.agent, signal, headers: { 'user-agent': USER_AGENT } });
      await res.body.dump();
      if (res.statusCode >= 500) return { status: 'degraded', detail: `${this.host} answered ${res.statusCode}` };
      return { status: 'connected', detail: `${this.host} reachable` };
    } catch (err) {
      return { status: 'error', error: `could not reach ${this.host}: ${describeNetworkError(err)}` };
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/**
 * undici puts the socket's reason (ECONNREFUSED…) in `cause`. A timeout arrives either as the
 * signal's TimeoutError or as one of undici's own (connect, headers, body), whichever fires first.
 */
function describeNetworkError(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string; cause?: { message?: string; code?: string } };
  const inner = e?.cause?.code ?? e?.code;
  if (e?.name === 'TimeoutError' || /^UND_ERR_\w*TIMEOUT$/.test(inner ?? '')) return 'timed out';
  const text = e?.cause?.message ?? e?.message ?? String(err);
  return inner && !text.includes(inner) ? `${text} (${inner})` : text;
}

export default defineProvider({
  capability: 'notification',
  name: 'webhook',
  description: 'Signed JSON notifications to any HTTP endpoint (HMAC-SHA256, replay-safe timestamps)',
  config,
  env: { url: 'NOTIFICATION_WEBHOOK_URL', secret: 'NOTIFICATION_WEBHOOK_SECRET', timeoutMs: 'NOTIFICATION_WEBHOOK_TIMEOUT_MS' },
  secrets: ['secret'],
  create: (cfg) => new WebhookNotification(cfg),
});
