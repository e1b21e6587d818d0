import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import {
  assertEmailMessage,
  ConfigError,
  defineProvider,
  type EmailMessage,
  type EmailProvider,
  emailAddressOf,
  fields,
  type Health,
  isRetryable,
  type Logger,
  sendEach,
  z,
} from '@apigate/kernel';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer';
import type { SMTPPoolSentMessageInfo } from 'nodemailer/lib/smtp-pool';

export const config = z
  .object({
    host: z.string().min(1).describe('the SMTP server host name, e.g. smtp.example.com'),
    port: fields.int({ min: 1, max: 65_535 }).default(587),
    username: z.string().optional(),
    password: z.string().optional(),
    from: z
      .string()
      .refine((v) => emailAddressOf(v) !== undefined, 'expected an email address')
      .describe('an address such as noreply@example.com or "APIGate <noreply@example.com>"'),
    /** true: STARTTLS is required (implicit TLS on 465); false: plain SMTP, no TLS at all. */
    tls: fields.flag(true),
    /** Implicit TLS on a port other than 465 (port 465 always uses it when tls is on). */
    implicitTls: fields.flag(false),
    /** PEM file with the CA (or the self-signed certificate itself) that signs the server certificate. */
    tlsCaFile: z.string().optional(),
    /** false accepts any certificate: for test and private servers only. */
    tlsRejectUnauthorized: fields.flag(true),
    poolSize: fields.int({ min: 1, max: 100 }).default(5),
    timeoutMs: fields.int({ min: 100 }).default(30_000),
  })
  .superRefine((c, ctx) => {
    if (c.implicitTls && !c.tls) ctx.addIssue({ code: 'custom', path: ['implicitTls'], message: 'cannot be true while SMTP_TLS is false' });
    if (c.username && !c.password) ctx.addIssue({ code: 'custom', path: ['password'], message: 'is required when SMTP_USERNAME is set' });
    if (c.password && !c.username) ctx.addIssue({ code: 'custom', path: ['username'], message: 'is required when SMTP_PASSWORD is set' });
  });

export type SmtpConfig = z.infer<typeof config>;

/** nodemailer's error shape (errors.d.ts in nodemailer 10). */
interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  /** Set by nodemailer from the reply class: 5xx (except 503) is permanent. */
  permanent?: boolean;
  /** The socket's own code under nodemailer's ESOCKET, e.g. ECONNREFUSED or DEPTH_ZERO_SELF_SIGNED_CERT. */
  originalCode?: string;
}

/** OpenSSL and Node codes for a certificate or TLS handshake the client refused: config, not weather. */
const TLS_REJECTION = /CERT|SELF_SIGNED|UNABLE_TO_|^ERR_TLS_|^ERR_SSL_/;

/** The connection failed or dropped, or the pool was full: a later attempt may get through. */
const TRANSIENT_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'EPROXY', 'EMAXLIMIT', 'EABORT']);
/** Bad TLS, credentials, envelope or message: the same attempt fails the same way. */
const FINAL_CODES = new Set([
  'ETLS',
  'EREQUIRETLS',
  'EPROTOCOL',
  'EENVELOPE',
  'EMESSAGE',
  'EAUTH',
  'ENOAUTH',
  'EOAUTH2',
  'ECONFIG',
  'EMAXRECIPIENTS',
  'ESTREAM',
  'EFILEACCESS',
  'EURLACCESS',
]);

/**
 * 4xx replies are transient and 5xx permanent (RFC 5321); nodemailer's `permanent` flag follows
 * that and also treats 503 as transient. Without a reply: connection failures are retryable;
 * a refused certificate and nodemailer's other codes (TLS, auth, envelope, message) are not.
 */
export function isRetryableSmtp(err: unknown): boolean {
  const e = err as SmtpError;
  if (typeof e?.responseCode === 'number' && e.responseCode >= 400)
    return typeof e.permanent === 'boolean' ? !e.permanent : e.responseCode < 500;
  if (typeof e?.originalCode === 'string' && TLS_REJECTION.test(e.originalCode)) return false;
  if (typeof e?.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  if (typeof e?.code === 'string' && FINAL_CODES.has(e.code)) return false;
  return isRetryable(err);
}

class SmtpEmail implements EmailProvider {
  private readonly transporter: Mail<SMTPPoolSentMessageInfo>;
  private readonly where: string;

  constructor(
    private readonly cfg: SmtpConfig,
    private readonly logger: Logger,
  ) {
    const implicit = cfg.tls && (cfg.implicitTls || cfg.port === 465);
    this.where = `${cfg.host}:${cfg.port} (${!cfg.tls ? 'plain' : implicit ? 'implicit TLS' : 'STARTTLS'})`;
    const tlsOptions: ConnectionOptions = {
      rejectUnauthorized: cfg.tlsRejectUnauthorized,
      ...(cfg.tlsCaFile ? { ca: readCaFile(cfg.tlsCaFile) } : {}),
    };
    this.transporter = nodemailer.createTransport({
      pool: true,
      host: cfg.host,
      port: cfg.port,
      secure: implicit,
      // STARTTLS is mandatory when TLS is on, so a stripped STARTTLS offer fails instead of sending in clear.
      requireTLS: cfg.tls && !implicit,
      ignoreTLS: !cfg.tls,
      tls: tlsOptions,
      ...(cfg.username ? { auth: { user: cfg.username, pass: cfg.password ?? '' }, forceAuth: true } : {}),
      maxConnections: cfg.poolSize,
      connectionTimeout: cfg.timeoutMs,
      greetingTimeout: cfg.timeoutMs,
      socketTimeout: cfg.timeoutMs,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
  }

  /** An error naming the server, classified by SMTP's rules (not HTTP's); the kernel makes it a masked ProviderError. */
  private fail(err: unknown): Error {
    const e = err as SmtpError;
    const facts = { retryable: isRetryableSmtp(err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) };
    return Object.assign(new Error(`SMTP ${this.where}: ${e?.message ?? String(err)}`, { cause: err }), facts);
  }

  private toMail(msg: EmailMessage): Mail.Options {
    // Malformed input fails here, before a pooled connection is used, as a final (non-retryable) error.
    assertEmailMessage(msg, this.cfg.from);
    return {
      from: msg.from ?? this.cfg.from,
      to: msg.to,
      ...(msg.cc?.length ? { cc: msg.cc } : {}),
      ...(msg.bcc?.length ? { bcc: msg.bcc } : {}),
      ...(msg.replyTo ? { replyTo: msg.replyTo } : {}),
      subject: msg.subject,
      ...(msg.text !== undefined ? { text: msg.text } : {}),
      ...(msg.html !== undefined ? { html: msg.html } : {}),
      ...(msg.headers ? { headers: msg.headers } : {}),
      ...(msg.attachments?.length
        ? {
            attachments: msg.attachments.map((a) => ({
              filename: a.filename,
              content: Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength),
              ...(a.contentType ? { contentType: a.contentType } : {}),
            })),
          }
        : {}),
    };
  }

  async send(msg: EmailMessage): Promise<{ messageId: string }> {
    const mail = this.toMail(msg);
    let info: SMTPPoolSentMessageInfo;
    try {
      info = await this.transporter.sendMail(mail);
    } catch (err) {
      throw this.fail(err);
    }
    // Some recipients refused, others accepted: the message went out, so a retry would duplicate it.
    if (info.rejected?.length) {
      this.logger.warn({ rejected: info.rejected.length, accepted: info.accepted?.length ?? 0 }, 'SMTP server refused some recipients');
    }
    return { messageId: info.messageId };
  }

  /** As many messages at once as the pool has connections; each failure is reported by index, the rest still go. */
  sendBulk(msgs: EmailMessage[]) {
    return sendEach(msgs, (m) => this.send(m), { concurrency: this.cfg.poolSize });
  }

  /** Opens a fresh connection, upgrades TLS and authenticates (nodemailer's verify), then quits. */
  async check(signal: AbortSignal): Promise<Health> {
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(Object.assign(new Error('health check aborted before the SMTP server answered'), { code: 'ETIMEDOUT' }));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([this.transporter.verify(), aborted]);
      return { status: 'connected', detail: `${this.where}${this.cfg.username ? ', authenticated' : ''}` };
    } catch (err) {
      return { status: 'error', error: this.fail(err).message };
    } finally {
      signal.removeEventListener('abort', onAbort!);
      aborted.catch(() => {});
    }
  }

  async close(): Promise<void> {
    this.transporter.close();
  }
}

function readCaFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError({
      field: 'tlsCaFile',
      envVar: 'SMTP_TLS_CA_FILE',
      settingKey: 'email.smtp.tls_ca_file',
      expected: `a readable PEM file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    });
  }
}

export default defineProvider({
  capability: 'email',
  name: 'smtp',
  description: 'Email over SMTP (nodemailer, pooled connections, STARTTLS or implicit TLS)',
  config,
  env: {
    host: 'SMTP_HOST',
    port: 'SMTP_PORT',
    username: 'SMTP_USERNAME',
    password: 'SMTP_PASSWORD',
    from: 'SMTP_FROM',
    tls: 'SMTP_TLS',
    implicitTls: 'SMTP_IMPLICIT_TLS',
    tlsCaFile: 'SMTP_TLS_CA_FILE',
    tlsRejectUnauthorized: 'SMTP_TLS_REJECT_UNAUTHORIZED',
    poolSize: 'SMTP_POOL_SIZE',
    timeoutMs: 'SMTP_TIMEOUT_MS',
  },
  secrets: ['password'],
  features: { attachments: true },
  create: (cfg, ctx) => new SmtpEmail(cfg, ctx.logger),
});
