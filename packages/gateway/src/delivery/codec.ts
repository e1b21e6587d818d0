import { type EmailMessage, InvalidInputError, type Notification } from '@apigate/kernel';

/**
 * Job payloads are JSON (Redis stores them as text), so the two values JSON cannot carry are
 * converted: attachment bytes to base64, `occurredAt` to an ISO string. `v` lets a later
 * format coexist with jobs already queued.
 */
export interface EmailJob {
  v: 1;
  message: Omit<EmailMessage, 'attachments'> & { attachments?: { filename: string; contentType?: string; base64: string }[] };
}

export interface NotificationJob {
  v: 1;
  notification: Omit<Notification, 'occurredAt'> & { occurredAt: string };
}

export function encodeEmail(msg: EmailMessage): EmailJob {
  const { attachments, ...rest } = msg;
  return {
    v: 1,
    message: {
      ...rest,
      ...(attachments?.length
        ? {
            attachments: attachments.map((a) => ({
              filename: a.filename,
              ...(a.contentType ? { contentType: a.contentType } : {}),
              base64: Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength).toString('base64'),
            })),
          }
        : {}),
    },
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** The message back from a job; a payload in no known format is an InvalidInputError (the job cannot succeed). */
export function decodeEmail(payload: unknown): EmailMessage {
  if (!isObject(payload) || payload.v !== 1 || !isObject(payload.message))
    throw new InvalidInputError('email job: payload is not an outbox email (v1)');
  const { attachments, ...rest } = (payload as unknown as EmailJob).message;
  return {
    ...rest,
    ...(attachments?.length
      ? {
          attachments: attachments.map((a) => ({
            filename: a.filename,
            ...(a.contentType ? { contentType: a.contentType } : {}),
            content: new Uint8Array(Buffer.from(a.base64, 'base64')),
          })),
        }
      : {}),
  };
}

export function encodeNotification(n: Notification): NotificationJob {
  return { v: 1, notification: { ...n, occurredAt: n.occurredAt.toISOString() } };
}

export function decodeNotification(payload: unknown): Notification {
  if (!isObject(payload) || payload.v !== 1 || !isObject(payload.notification)) {
    throw new InvalidInputError('notification job: payload is not an outbox notification (v1)');
  }
  const n = (payload as unknown as NotificationJob).notification;
  return { ...n, occurredAt: new Date(n.occurredAt) };
}
