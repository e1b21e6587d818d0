import {
  assertNotification,
  defineProvider,
  fields,
  type Health,
  type Notification,
  type NotificationProvider,
  redact,
  type Severity,
  z,
} from '@apigate/kernel';
import {
  type FetchFunction,
  IncomingWebhook,
  IncomingWebhookHTTPError,
  IncomingWebhookRequestError,
  type IncomingWebhookSendArguments,
} from '@slack/webhook';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export const config = z.object({
  webhookUrl: z
    .url({ error: 'expected a URL' })
    .refine((v) => {
      const u = new URL(v);
      // The URL is the credential: never send it in clear text, except to a local stand-in.
      return u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.has(u.hostname));
    }, 'expected an https:// URL')
    .describe('an incoming webhook URL such as https://hooks.slack.com/services/T…/B…/…'),
  /** Legacy webhooks post here instead of their default channel; app webhooks ignore it. */
  channel: z
    .string()
    .regex(/^(#[a-z0-9._-]+|@[\w.-]+|[CGD][A-Z0-9]{6,})$/, 'expected a channel such as #api-alerts, @user or a channel id')
    .optional(),
  timeoutMs: fields.int({ min: 100 }).default(10_000),
});

export type SlackConfig = z.infer<typeof config>;

type Blocks = NonNullable<IncomingWebhookSendArguments['blocks']>;

export const SEVERITY_EMOJI: Record<Severity, string> = {
  info: ':information_source:',
  warning: ':warning:',
  error: ':x:',
  critical: ':rotating_light:',
};

/** Slack's mrkdwn treats &, < and > as control characters. */
const escapeMrkdwn = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** Block Kit rejects the whole message when a text is over its limit, so cut instead. */
const cut = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);

/**
 * A readable Block Kit message: header with the severity emoji and title, the text, the fields
 * (two columns, at most ten per section), a button to the url, and a context line with severity,
 * event, id and time (shown in each reader's time zone).
 */
export function buildSlackMessage(n: Notification, channel?: string): IncomingWebhookSendArguments {
  const emoji = SEVERITY_EMOJI[n.severity];
  const blocks: Blocks = [{ type: 'header', text: { type: 'plain_text', text: cut(`${emoji} ${n.title}`, 150), emoji: true } }];
  if (n.text) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: cut(escapeMrkdwn(n.text), 3000) } });
  const entries = Object.entries(n.fields ?? {});
  for (let i = 0; i < entries.length; i += 10) {
    blocks.push({
      type: 'section',
      fields: entries
        .slice(i, i + 10)
        .map(([k, v]) => ({ type: 'mrkdwn', text: cut(`*${escapeMrkdwn(k)}*\n${escapeMrkdwn(String(v))}`, 2000) })),
    });
  }
  if (n.url) {
    blocks.push({ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open' }, url: cut(n.url, 3000) }] });
  }
  const unix = Math.floor(n.occurredAt.getTime() / 1000);
  const when = `<!date^${unix}^{date_short_pretty} {time_secs}|${n.occurredAt.toISOString()}>`;
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: `*${n.severity.toUpperCase()}* · \`${escapeMrkdwn(n.event)}\` · ${escapeMrkdwn(n.id)} · ${when}` }],
  });
  return {
    // Shown in push notifications and by clients that cannot render blocks.
    text: cut(escapeMrkdwn(`${emoji} ${n.title}${n.text ? ` — ${n.text}` : ''}`), 3000),
    blocks,
    unfurl_links: false,
    unfurl_media: false,
    ...(channel ? { channel } : {}),
  };
}

class SlackNotification implements NotificationProvider {
  private readonly host: string;
  /** The webhook path holds the token; the kernel masks the whole URL, this masks an error quoting only the path. */
  private readonly tokenPath: string;

  constructor(private readonly cfg: SlackConfig) {
    const url = new URL(cfg.webhookUrl);
    this.host = url.host;
    this.tokenPath = url.pathname;
  }

  /**
   * Retryable follows the kernel's rule for `status` (408, 429, 5xx); pass `retryable` where there
   * is no status. The SDK's error is not kept as the cause: a fetch error can carry the request,
   * webhook URL included. The kernel makes it a masked ProviderError.
   */
  private fail(message: string, facts: { status?: number; retryable?: boolean }): Error {
    return Object.assign(new Error(redact(message, [this.tokenPath])), facts);
  }

  async notify(n: Notification): Promise<void> {
    assertNotification(n);
    // A fetch that remembers Retry-After, which the SDK's HTTP error does not keep.
    let retryAfter: string | null = null;
    const fetchFn: FetchFunction = async (url, init) => {
      const res = await fetch(url, init);
      retryAfter = res.headers.get('retry-after');
      return res;
    };
    // Retries are left to the caller (the gateway's queue), so the SDK's retry policy stays at none.
    const webhook = new IncomingWebhook(this.cfg.webhookUrl, { timeout: this.cfg.timeoutMs, fetch: fetchFn });
    try {
      await webhook.send(buildSlackMessage(n, this.cfg.channel));
    } catch (err) {
      if (err instanceof IncomingWebhookHTTPError) {
        const status = err.statusCode;
        const reason = typeof err.body === 'string' && err.body.trim() ? `: ${err.body.trim().slice(0, 200)}` : '';
        const wait = status === 429 && retryAfter ? `, retry after ${retryAfter} s` : '';
        throw this.fail(`Slack answered ${status}${reason}${wait}`, { status });
      }
      const original = err instanceof IncomingWebhookRequestError ? err.original : (err as Error);
      const detail = (original?.cause as Error | undefined)?.message ?? original?.message ?? String(err);
      throw this.fail(`could not reach Slack at ${this.host}: ${detail}`, { retryable: true });
    }
  }

  /**
   * Side-effect free: the URL's shape is checked by the config; this sends a HEAD request (which
   * Slack never treats as a post) to show that the host resolves, accepts TLS and answers HTTP.
   * It cannot tell a revoked webhook from a live one: only a post would, and that posts a message.
   */
  async check(signal: AbortSignal): Promise<Health> {
    try {
      const res = await fetch(this.cfg.webhookUrl, { method: 'HEAD', redirect: 'manual', signal });
      if (res.status >= 500) return { status: 'degraded', detail: `${this.host} answered ${res.status}` };
      return { status: 'connected', detail: `${this.host} reachable${this.cfg.channel ? `, channel ${this.cfg.channel}` : ''}` };
    } catch (err) {
      const detail = ((err as Error)?.cause as Error | undefined)?.message ?? (err as Error)?.message ?? String(err);
      return { status: 'error', error: this.fail(`could not reach Slack at ${this.host}: ${detail}`, { retryable: true }).message };
    }
  }

  async close(): Promise<void> {}
}

export default defineProvider({
  capability: 'notification',
  name: 'slack',
  description: 'Notifications to a Slack channel through an incoming webhook (Block Kit messages)',
  config,
  env: { webhookUrl: 'SLACK_WEBHOOK_URL', channel: 'SLACK_CHANNEL', timeoutMs: 'SLACK_TIMEOUT_MS' },
  secrets: ['webhookUrl'],
  create: (cfg) => new SlackNotification(cfg),
});
