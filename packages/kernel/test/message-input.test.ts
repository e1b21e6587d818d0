import { describe, expect, it } from 'vitest';
import {
  assertEmailMessage,
  assertNotification,
  type EmailMessage,
  emailAddressOf,
  InvalidInputError,
  type Notification,
} from '../src/index.js';

const mail = (over: Partial<EmailMessage> = {}): EmailMessage => ({ to: 'a@example.com', subject: 'Hi', text: 'x', ...over });
const note = (over: Partial<Notification> = {}): Notification => ({
  id: 'ntf_1',
  event: 'provider.error',
  title: 'Stripe is down',
  severity: 'error',
  occurredAt: new Date(),
  ...over,
});

describe('email input', () => {
  it('reads bare addresses out of display forms', () => {
    expect(emailAddressOf('"Billing" <billing@example.com>')).toBe('billing@example.com');
    expect(emailAddressOf(' a@b.org ')).toBe('a@b.org');
    expect(emailAddressOf('not-an-address')).toBeUndefined();
    expect(emailAddressOf(42)).toBeUndefined();
  });

  it('accepts a full message, and a missing from when there is a default', () => {
    expect(() =>
      assertEmailMessage(
        mail({ to: ['a@x.org', 'B <b@x.org>'], cc: ['c@x.org'], bcc: ['d@x.org'], replyTo: 'r@x.org', headers: { 'X-Id': '1' } }),
        'from@x.org',
      ),
    ).not.toThrow();
  });

  it.each([
    ['no recipient', mail({ to: [] }), 'email to'],
    ['a malformed cc', mail({ cc: ['nope'] }), 'email cc'],
    ['no from and no default', mail(), 'email from'],
    ['an empty subject', mail({ from: 'f@x.org', subject: ' ' }), 'email subject'],
    ['a header with a line break', mail({ from: 'f@x.org', headers: { 'X-A': 'a\r\nBcc: evil@x.org' } }), 'email header X-A'],
    ['a header name with a colon', mail({ from: 'f@x.org', headers: { 'X:A': 'a' } }), 'email header'],
    ['an attachment without a name', mail({ from: 'f@x.org', attachments: [{ filename: '', content: new Uint8Array() }] }), 'attachment 0'],
  ])('rejects %s, naming the field', (_what, msg, field) => {
    expect(() => assertEmailMessage(msg)).toThrow(InvalidInputError);
    expect(() => assertEmailMessage(msg)).toThrow(field);
  });
});

describe('notification input', () => {
  it('accepts a valid notification', () => {
    expect(() => assertNotification(note({ fields: { plan: 'pro', used: 93 }, url: 'https://x.example/a' }))).not.toThrow();
  });

  it.each([
    ['no id', note({ id: '' }), 'notification id'],
    ['no title', note({ title: '' }), 'title'],
    ['an unknown severity', note({ severity: 'fatal' as never }), 'severity'],
    ['an invalid date', note({ occurredAt: new Date(Number.NaN) }), 'occurredAt'],
    ['a non-finite field', note({ fields: { x: Number.POSITIVE_INFINITY } }), 'field "x"'],
    ['a relative url', note({ url: '/admin' }), 'url'],
  ])('rejects %s, naming the field', (_what, n, field) => {
    expect(() => assertNotification(n)).toThrow(InvalidInputError);
    expect(() => assertNotification(n)).toThrow(field);
  });
});
