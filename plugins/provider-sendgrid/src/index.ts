import {
  assertEmailMessage,
  defineProvider,
  type EmailMessage,
  type EmailProvider,
  emailAddressOf,
  fields,
  type Health,
  InvalidInputError,
  sendEach,
  z,
} from '@apigate/kernel';
import { Client } from '@sendgrid/client';
import { type MailDataRequired, MailService } from '@sendgrid/mail';

export const config = z.object({
  apiKey: z
    .string()
    .refine((v) => v.startsWith('SG.'), 'expected a SendGrid API key')
    .describe('a key that starts with "SG." and has the mail.send scope'),
  from: z
    .string()
    .refine((v) => emailAddressOf(v) !== undefined, 'expected an email address')
    .describe('a verified sender such as noreply@example.com or "APIGate <noreply@example.com>"'),
  /** The EU data-residency endpoint is https://api.eu.sendgrid.com; tests point it at a local server. */
  baseUrl: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).default('https://api.sendgrid.com'),
  timeoutMs: fields.int({ min: 100 }).default(30_000),
});

export type SendGridConfig = z.infer<typeof config>;

/** Requests in flight at once during sendBulk: fast, without tripping SendGrid's rate limit. */
const BULK_CONCURRENCY = 4;

/** What the SDK rejects with: ResponseError (an answer came back) or an axios error (none did). */
interface SdkError extends Error {
  code?: number | string;
  isAxiosError?: boolean;
  response?: { headers?: Record<string, unknown>; body?: unknown };
}

interface ApiErrorBody {
  errors?: { message?: string; field?: string | null }[];
}

/** Seconds to wait, from Retry-After or SendGrid's X-RateLimit-Reset (epoch seconds). */
function retryAfterSeconds(headers: Record<string, unknown> = {}): number | undefined {
  const after = Number(headers['retry-after']);
  if (Number.isFinite(after) && after >= 0) return after;
  const reset = Number(headers['x-ratelimit-reset']);
  if (Number.isFinite(reset) && reset > 0) return Math.max(0, Math.ceil(reset - Date.now() / 1000));
  return undefined;
}

function describeStatus(status: number, body: unknown, headers: Record<string, unknown> | undefined): string {
  const details = ((body as ApiErrorBody | undefined)?.errors ?? [])
    .map((e) => (e.field ? `${e.message ?? 'invalid'} (field: ${e.field})` : (e.message ?? '')))
    .filter(Boolean);
  let text = `SendGrid answered ${status}`;
  if (status === 401 || status === 403) text += ': the API key was rejected or lacks the mail.send scope';
  if (status === 429) {
    const wait = retryAfterSeconds(headers);
    text += `: rate limited${wait !== undefined ? `, retry after ${wait} s` : ''}`;
  }
  return details.length ? `${text}: ${details.join('; ')}` : text;
}

class SendGridEmail implements EmailProvider {
  private readonly mail = new MailService();
  private readonly host: string;

  constructor(private readonly cfg: SendGridConfig) {
    this.host = new URL(cfg.baseUrl).host;
    this.mail.setClient(this.client());
  }

  /** setApiKey resets the base URL to the global region, so the base URL is set after it. */
  private client(extra: Record<string, unknown> = {}): Client {
    const client = new Client();
    client.setApiKey(this.cfg.apiKey);
    client.setDefaultRequest({ baseUrl: this.cfg.baseUrl, timeout: this.cfg.timeoutMs, ...extra } as never);
    return client;
  }

  /**
   * A ResponseError (SendGrid answered) keeps its status, so the kernel's rule applies: 408, 429
   * and 5xx retryable, other answers final. No answer at all (refused, reset, timed out) is
   * retryable; an error the SDK raised before sending is final. The SDK's error is not kept as the
   * cause: axios errors carry the request, Authorization header included. The kernel makes it a
   * masked ProviderError.
   */
  private fail(err: unknown): Error {
    const e = err as SdkError;
    const status = typeof e?.code === 'number' && e.response ? e.code : undefined;
    const facts =
      status !== undefined
        ? { message: describeStatus(status, e.response?.body, e.response?.headers), status }
        : e?.isAxiosError
          ? {
              message: `could not reach SendGrid at ${this.host}: ${e.message}`,
              retryable: true,
              ...(typeof e.code === 'string' ? { code: e.code } : {}),
            }
          : { message: e?.message ?? String(err), retryable: false };
    const { message, ...rest } = facts;
    return Object.assign(new Error(message), rest);
  }

  private toMailData(msg: EmailMessage): MailDataRequired {
    assertEmailMessage(msg, this.cfg.from);
    if (!msg.text && !msg.html) throw new InvalidInputError('email: SendGrid needs a text or html body');
    const data = {
      from: msg.from ?? this.cfg.from,
      to: msg.to,
      ...(msg.cc?.length ? { cc: msg.cc } : {}),
      ...(msg.bcc?.length ? { bcc: msg.bcc } : {}),
      ...(msg.replyTo ? { replyTo: msg.replyTo } : {}),
      subject: msg.subject,
      ...(msg.text ? { text: msg.text } : {}),
      ...(msg.html ? { html: msg.html } : {}),
      ...(msg.headers && Object.keys(msg.headers).length ? { headers: msg.headers } : {}),
      ...(msg.attachments?.length
        ? {
            attachments: msg.attachments.map((a) => ({
              filename: a.filename,
              content: Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength).toString('base64'),
              type: a.contentType ?? 'application/octet-stream',
              disposition: 'attachment',
            })),
          }
        : {}),
    };
    return data as MailDataRequired;
  }

  async send(msg: EmailMessage): Promise<{ messageId: string }> {
    const data = this.toMailData(msg);
    let response: Awaited<ReturnType<MailService['send']>>[0];
    try {
      [response] = await this.mail.send(data);
    } catch (err) {
      throw this.fail(err);
    }
    const id = (response.headers as Record<string, unknown>)['x-message-id'];
    if (typeof id !== 'string' || !id)
      throw this.fail(new Error(`SendGrid answered ${response.statusCode} without an X-Message-Id header`));
    return { messageId: id };
  }

  /** One API call per message, a few at a time; each failure is reported by index, the rest still go. */
  sendBulk(msgs: EmailMessage[]) {
    return sendEach(msgs, (m) => this.send(m), { concurrency: BULK_CONCURRENCY });
  }

  /** GET /v3/scopes: needs a valid key, sends nothing, and shows whether the key may send mail. */
  async check(signal: AbortSignal): Promise<Health> {
    try {
      const [, body] = await this.client({ signal }).request({ method: 'GET', url: '/v3/scopes' });
      const scopes: unknown = (body as { scopes?: unknown })?.scopes;
      if (Array.isArray(scopes) && !scopes.includes('mail.send')) {
        return { status: 'degraded', detail: `${this.host}: the API key lacks the mail.send scope` };
      }
      return { status: 'connected', detail: this.host };
    } catch (err) {
      return { status: 'error', error: this.fail(err).message };
    }
  }

  async close(): Promise<void> {}
}

export default defineProvider({
  capability: 'email',
  name: 'sendgrid',
  description: 'Email through the SendGrid v3 API (official @sendgrid/mail client)',
  config,
  env: { apiKey: 'SENDGRID_API_KEY', from: 'SENDGRID_FROM', baseUrl: 'SENDGRID_BASE_URL', timeoutMs: 'SENDGRID_TIMEOUT_MS' },
  secrets: ['apiKey'],
  features: { attachments: true },
  create: (cfg) => new SendGridEmail(cfg),
});
