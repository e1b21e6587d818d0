import type { ProviderInstance } from './common.js';

export interface EmailAttachment {
  filename: string;
  content: Uint8Array;
  contentType?: string;
}

export interface EmailMessage {
  to: string | string[];
  cc?: string[];
  bcc?: string[];
  /** Defaults to the provider's configured from address. */
  from?: string;
  replyTo?: string;
  subject: string;
  text?: string;
  html?: string;
  headers?: Record<string, string>;
  attachments?: EmailAttachment[];
}

export interface BulkResult {
  sent: number;
  failed: { index: number; error: string }[];
}

/** Templates are rendered by the gateway; providers only send. */
export interface EmailProvider extends ProviderInstance {
  send(msg: EmailMessage): Promise<{ messageId: string }>;
  sendBulk(msgs: EmailMessage[]): Promise<BulkResult>;
}

export interface EmailFeatures {
  attachments?: boolean;
}

/**
 * `sendBulk` for any provider: sends each message with `send` (`concurrency` at a time, default
 * one after another) and reports each failure by its index, in index order, with its message
 * (the kernel's instrumentation masks secrets in the result). A provider's `sendBulk` is usually
 * `sendBulk(msgs) { return sendEach(msgs, (m) => this.send(m)); }`.
 */
export async function sendEach(
  msgs: readonly EmailMessage[],
  send: (msg: EmailMessage) => Promise<unknown>,
  opts: { concurrency?: number } = {},
): Promise<BulkResult> {
  const failed: BulkResult['failed'] = [];
  let next = 0;
  const lane = async () => {
    while (next < msgs.length) {
      const index = next++;
      try {
        await send(msgs[index]!);
      } catch (err) {
        failed.push({ index, error: (err as { message?: unknown } | null)?.message ? String((err as Error).message) : String(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 1, msgs.length)) }, lane));
  failed.sort((a, b) => a.index - b.index);
  return { sent: msgs.length - failed.length, failed };
}
