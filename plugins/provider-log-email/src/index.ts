import { randomUUID } from 'node:crypto';
import {
  assertEmailMessage,
  defineProvider,
  type EmailMessage,
  type EmailProvider,
  emailAddressOf,
  fields,
  type Logger,
  sendEach,
  utf8,
  z,
} from '@apigate/kernel';

/** A message as the log provider captured it: plain data, recipients as bare addresses. */
export interface LoggedEmail {
  messageId: string;
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  replyTo?: string;
  subject: string;
  text?: string;
  html?: string;
  headers: Record<string, string>;
  attachments: { filename: string; contentType?: string; content: Uint8Array }[];
  /** Bytes of text, html and attachments together. */
  size: number;
  loggedAt: Date;
}

const addresses = (value: string | string[] | undefined): string[] =>
  (value === undefined ? [] : Array.isArray(value) ? value : [value]).map((a) => emailAddressOf(a)!);

/** Logs messages instead of sending them and keeps the last `keepLast` for inspection. */
export class LogEmail implements EmailProvider {
  private readonly kept: LoggedEmail[] = [];
  private readonly domain: string;

  constructor(
    private readonly config: { from: string; keepLast: number },
    private readonly logger: Logger,
  ) {
    this.domain = emailAddressOf(config.from)!.split('@')[1]!;
  }

  async send(msg: EmailMessage): Promise<{ messageId: string }> {
    // The kernel's contract check; afterwards every address below parses.
    assertEmailMessage(msg, this.config.from);
    const attachments = (msg.attachments ?? []).map((a) => ({
      filename: a.filename,
      ...(a.contentType ? { contentType: a.contentType } : {}),
      content: new Uint8Array(a.content),
    }));
    const size =
      utf8.encode(msg.text ?? '').byteLength +
      utf8.encode(msg.html ?? '').byteLength +
      attachments.reduce((n, a) => n + a.content.byteLength, 0);
    const logged: LoggedEmail = {
      // RFC 5322 msg-id: <unique@domain>, the domain taken from the sender like mail servers do.
      messageId: `<${randomUUID()}@${this.domain}>`,
      from: emailAddressOf(msg.from ?? this.config.from)!,
      to: addresses(msg.to),
      cc: addresses(msg.cc),
      bcc: addresses(msg.bcc),
      ...(msg.replyTo !== undefined ? { replyTo: emailAddressOf(msg.replyTo)! } : {}),
      subject: msg.subject,
      ...(msg.text !== undefined ? { text: msg.text } : {}),
      ...(msg.html !== undefined ? { html: msg.html } : {}),
      headers: { ...msg.headers },
      attachments,
      size,
      loggedAt: new Date(),
    };

    // Info carries who/what/how big; bodies only at debug; attachment bytes never.
    this.logger.info(
      {
        messageId: logged.messageId,
        from: logged.from,
        to: logged.to,
        ...(logged.cc.length ? { cc: logged.cc } : {}),
        ...(logged.bcc.length ? { bcc: logged.bcc } : {}),
        subject: logged.subject,
        size,
        ...(attachments.length
          ? { attachments: attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, size: a.content.byteLength })) }
          : {}),
      },
      'email logged, not sent',
    );
    this.logger.debug(
      { messageId: logged.messageId, replyTo: logged.replyTo, headers: logged.headers, text: logged.text, html: logged.html },
      'email body',
    );

    if (this.config.keepLast > 0) {
      this.kept.push(logged);
      if (this.kept.length > this.config.keepLast) this.kept.splice(0, this.kept.length - this.config.keepLast);
    }
    return { messageId: logged.messageId };
  }

  sendBulk(msgs: EmailMessage[]) {
    return sendEach(msgs, (m) => this.send(m));
  }

  /** The last messages logged, oldest first (copies). */
  messages(): LoggedEmail[] {
    return this.kept.map((m) => ({ ...m, attachments: m.attachments.map((a) => ({ ...a, content: new Uint8Array(a.content) })) }));
  }

  clear(): void {
    this.kept.length = 0;
  }

  async check() {
    return { status: 'connected' as const, detail: `logging only; ${this.kept.length} messages kept` };
  }

  async close() {}
}

export default defineProvider({
  capability: 'email',
  name: 'log',
  description: 'Logs emails instead of sending them (development)',
  config: z.object({
    from: z
      .string()
      .refine((v) => emailAddressOf(v) !== undefined, 'not an email address')
      .default('apigate@localhost')
      .describe('the address to send from when a message has none, e.g. apigate@localhost'),
    keepLast: fields.int({ min: 0 }).default(100).describe('how many recent messages to keep in memory for inspection (0 keeps none)'),
  }),
  env: { keepLast: 'EMAIL_LOG_KEEP_LAST' },
  features: { attachments: true },
  create: (config, ctx) => new LogEmail(config, ctx.logger),
});
