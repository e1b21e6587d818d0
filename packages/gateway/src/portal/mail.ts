import type { EmailMessage, EmailProvider } from '@apigate/kernel';

/**
 * Where the portal's emails go: the delivery outbox (queued, retried by the delivery workers),
 * or, without one, the email provider directly (`directMailer`). The Outbox fits as it is.
 */
export interface PortalMailer {
  sendEmail(msg: EmailMessage, opts?: { idempotencyId?: string }): Promise<unknown>;
}

/** Sends at once through the provider: for set-ups without a queue. */
export const directMailer = (email: EmailProvider): PortalMailer => ({ sendEmail: (msg) => email.send(msg) });

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function hours(ms: number): string {
  const h = Math.round(ms / 3_600_000);
  if (h >= 1) return h === 1 ? '1 hour' : `${h} hours`;
  const m = Math.max(1, Math.round(ms / 60_000));
  return m === 1 ? '1 minute' : `${m} minutes`;
}

/** One plain and one HTML part from paragraphs; the link is shown in full in both. */
function message(to: string, subject: string, paragraphs: string[], link?: { url: string; label: string }): EmailMessage {
  const text = [...paragraphs, ...(link ? [`${link.label}: ${link.url}`] : [])].join('\n\n');
  const html = [
    ...paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`),
    ...(link ? [`<p><a href="${escapeHtml(link.url)}">${escapeHtml(link.label)}</a></p>`, `<p>${escapeHtml(link.url)}</p>`] : []),
  ].join('\n');
  return { to, subject, text: `${text}\n`, html };
}

const greeting = (name: string) => (name ? `Hello ${name},` : 'Hello,');

export function verificationEmail(to: string, name: string, url: string, ttlMs: number): EmailMessage {
  return message(
    to,
    'Confirm your email address',
    [
      greeting(name),
      `Confirm that ${to} is your address to finish signing up. The link works once and expires in ${hours(ttlMs)}.`,
      'If you did not sign up, ignore this email.',
    ],
    { url, label: 'Confirm your email address' },
  );
}

export function resetEmail(to: string, name: string, url: string, ttlMs: number): EmailMessage {
  return message(
    to,
    'Reset your password',
    [
      greeting(name),
      `Someone asked to reset the password of the account ${to}. The link works once and expires in ${hours(ttlMs)}; setting a new password logs out every session.`,
      'If it was not you, ignore this email: your password stays as it is.',
    ],
    { url, label: 'Choose a new password' },
  );
}

/** Sent instead of a verification email when someone signs up with an address that already has an account. */
export function alreadyRegisteredEmail(to: string, name: string): EmailMessage {
  return message(to, 'You already have an account', [
    greeting(name),
    `Someone tried to sign up again with ${to}, which already has an account. Log in with your password, or ask for a password reset if you forgot it.`,
    'If it was not you, ignore this email: nothing changed.',
  ]);
}
