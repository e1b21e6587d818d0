// Verifies a notification webhook from APIGate. Node.js 18+, no dependencies.
import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * @param {string | Buffer} rawBody The request body exactly as received, before JSON.parse.
 * @param {Record<string, string | string[] | undefined>} headers Node's req.headers (lower-case names).
 * @param {string} secret The same value as NOTIFICATION_WEBHOOK_SECRET.
 * @param {number} [toleranceSeconds] Refuse deliveries signed longer ago than this (replays).
 * @returns {boolean} true when the delivery is authentic and recent.
 */
export function verifyApigateWebhook(rawBody, headers, secret, toleranceSeconds = 300) {
  const timestamp = String(headers['x-apigate-timestamp'] ?? '');
  const signatures = String(headers['x-apigate-signature'] ?? '');
  if (!/^\d+$/.test(timestamp)) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const hmac = createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
  const expected = Buffer.from(`v1=${hmac}`);
  // Several comma-separated signatures may be sent while a secret is rotated.
  return signatures.split(',').some((candidate) => {
    const given = Buffer.from(candidate.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
