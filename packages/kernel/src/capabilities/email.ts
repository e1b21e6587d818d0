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
