import type { Notification, NotificationProvider } from '@apigate/kernel';
import {
  assertValidManifest,
  describeNotificationProvider,
  providerErrorOf as providerErrorWithout,
  startSilentServer,
  testInstances,
} from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { buildSlackMessage } from '../src/index.js';
import { type FakeSlack, startFakeSlack } from './fake-slack.js';

let fake: FakeSlack;
const instances = testInstances(provider);

beforeAll(async () => {
  fake = await startFakeSlack();
});
afterAll(async () => {
  await instances.closeAll();
  await fake?.close();
});

const slack = (over: Record<string, string> = {}): Promise<NotificationProvider> => instances.make({ webhookUrl: fake.urls.ok, ...over });

const OCCURRED = new Date('2026-03-04T05:06:07.000Z');
const notification = (over: Partial<Notification> = {}): Notification => ({
  id: `ntf_${Math.random().toString(36).slice(2)}`,
  event: 'provider.error',
  title: 'Stripe is failing',
  severity: 'critical',
  occurredAt: OCCURRED,
  ...over,
});

/** The ProviderError `p` rejects with; the webhook URL must appear nowhere in it. */
const providerErrorOf = (p: Promise<unknown>, url: string) => providerErrorWithout(p, [new URL(url).pathname]);

describe('provider-slack', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describeNotificationProvider(provider, {
    name: 'conformance (official @slack/webhook client against a stand-in for hooks.slack.com)',
    secrets: () => ({ webhookUrl: fake.urls.ok }),
    received: () => fake.posts.map((p) => p.body),
    // 500/503/429/400, no answer, nothing listening, a slow answer, a failing check: the suite's own receiver.
    receiver: { config: (url) => ({ webhookUrl: url, timeoutMs: 1000 }), timeoutMs: 1000 },
  });

  describe('the message', () => {
    it('posts readable Block Kit JSON: header, text, fields, button, context', async () => {
      const p = await slack({ channel: '#api-alerts' });
      const n = notification({
        text: 'Payments fail with 502 since 05:00.',
        fields: { provider: 'stripe', failures: 17 },
        url: 'https://apigate.example.com/admin/providers',
      });
      await p.notify(n);
      const post = fake.posts.find((x) => JSON.stringify(x.body).includes(n.id))!;
      expect(post.headers['content-type']).toContain('application/json');
      expect(post.body.channel).toBe('#api-alerts');
      expect(post.body.text).toBe(':rotating_light: Stripe is failing — Payments fail with 502 since 05:00.');
      expect(post.body.blocks).toEqual([
        { type: 'header', text: { type: 'plain_text', text: ':rotating_light: Stripe is failing', emoji: true } },
        { type: 'section', text: { type: 'mrkdwn', text: 'Payments fail with 502 since 05:00.' } },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*provider*\nstripe' },
            { type: 'mrkdwn', text: '*failures*\n17' },
          ],
        },
        { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open' }, url: n.url }] },
        {
          type: 'context',
          elements: [
            {
              type: 'mrkdwn',
              text: `*CRITICAL* · \`provider.error\` · ${n.id} · <!date^${OCCURRED.getTime() / 1000}^{date_short_pretty} {time_secs}|2026-03-04T05:06:07.000Z>`,
            },
          ],
        },
      ]);
    });

    it('shows each severity with its emoji', () => {
      const headers = (['info', 'warning', 'error', 'critical'] as const).map(
        (severity) => (buildSlackMessage(notification({ severity })).blocks![0] as { text: { text: string } }).text.text,
      );
      expect(headers).toEqual([
        ':information_source: Stripe is failing',
        ':warning: Stripe is failing',
        ':x: Stripe is failing',
        ':rotating_light: Stripe is failing',
      ]);
    });

    it('escapes mrkdwn control characters so text cannot ping or link', () => {
      const msg = buildSlackMessage(notification({ text: '<!channel> a & b <https://evil.example|click>' }));
      expect(msg.blocks![1]).toEqual({
        type: 'section',
        text: { type: 'mrkdwn', text: '&lt;!channel&gt; a &amp; b &lt;https://evil.example|click&gt;' },
      });
    });

    it('stays within Block Kit limits: long titles cut, more than ten fields split', () => {
      const fields = Object.fromEntries(Array.from({ length: 13 }, (_v, i) => [`f${i}`, i]));
      const msg = buildSlackMessage(notification({ title: 'x'.repeat(400), fields }));
      const header = msg.blocks![0] as { text: { text: string } };
      expect(header.text.text.length).toBeLessThanOrEqual(150);
      const sections = msg.blocks!.filter((b) => 'fields' in b) as { fields: unknown[] }[];
      expect(sections.map((s) => s.fields.length)).toEqual([10, 3]);
    });

    it('leaves out the parts a notification does not have', () => {
      const msg = buildSlackMessage(notification());
      expect(msg.blocks!.map((b) => b.type)).toEqual(['header', 'context']);
      expect(msg).not.toHaveProperty('channel');
    });
  });

  describe('errors', () => {
    it('404 no_service and 403 invalid_token: final, saying why, without the URL', async () => {
      for (const [url, status, reason] of [
        [fake.urls.gone, 404, 'no_service'],
        [fake.urls.revoked, 403, 'invalid_token'],
      ] as const) {
        const err = await providerErrorOf((await slack({ webhookUrl: url })).notify(notification()), url);
        expect(err).toMatchObject({ retryable: false, status });
        expect(err.message).toContain(reason);
      }
    });

    it('429: retryable, with the Retry-After Slack sent', async () => {
      const err = await providerErrorOf((await slack({ webhookUrl: fake.urls.rateLimited })).notify(notification()), fake.urls.rateLimited);
      expect(err).toMatchObject({ retryable: true, status: 429 });
      expect(err.message).toContain('retry after 30 s');
    });

    it('500: retryable', async () => {
      const err = await providerErrorOf((await slack({ webhookUrl: fake.urls.broken })).notify(notification()), fake.urls.broken);
      expect(err).toMatchObject({ retryable: true, status: 500 });
    });

    it('Slack unreachable or silent: retryable', async () => {
      const gone = await startFakeSlack();
      await gone.close();
      const down = await providerErrorOf((await slack({ webhookUrl: gone.urls.ok })).notify(notification()), gone.urls.ok);
      expect(down.retryable).toBe(true);
      expect(down.message).toContain('could not reach Slack');

      const silent = await providerErrorOf(
        (await slack({ webhookUrl: fake.urls.held, timeoutMs: '300' })).notify(notification()),
        fake.urls.held,
      );
      expect(silent.retryable).toBe(true);
    });
  });

  describe('check()', () => {
    it('reaches the host without posting anything', async () => {
      const p = await slack({ channel: '#api-alerts' });
      const posts = fake.posts.length;
      const health = await p.check(AbortSignal.timeout(15_000));
      expect(health).toMatchObject({ status: 'connected', detail: `${new URL(fake.origin).host} reachable, channel #api-alerts` });
      expect(fake.requests.at(-1)?.method).toBe('HEAD');
      expect(fake.posts.length).toBe(posts);
    });

    it('reports an unreachable host as an error without the URL', async () => {
      const gone = await startFakeSlack();
      await gone.close();
      const health = await (await slack({ webhookUrl: gone.urls.ok })).check(AbortSignal.timeout(15_000));
      expect(health.status).toBe('error');
      expect(health.error).toContain('could not reach Slack');
      expect(health.error).not.toContain(new URL(gone.urls.ok).pathname);
    });

    it('gives up when the signal aborts', async () => {
      const silent = await startSilentServer();
      try {
        const health = await (await slack({ webhookUrl: `http://127.0.0.1:${silent.port}/services/T/B/x` })).check(silent.signal);
        expect(health.status).toBe('error');
      } finally {
        await silent.close();
      }
    });
  });

  describe('configuration', () => {
    it('treats the webhook URL as a secret', () => {
      expect(provider.secrets).toEqual(['webhookUrl']);
    });

    it('wants https, except for a local stand-in', () => {
      expect(() => provider.config.parse({ webhookUrl: 'http://hooks.slack.com/services/T/B/x' })).toThrow(/https/);
      expect(() => provider.config.parse({ webhookUrl: 'not a url' })).toThrow(/URL/);
      expect(provider.config.parse({ webhookUrl: 'https://hooks.slack.com/services/T/B/x' })).toMatchObject({ timeoutMs: 10_000 });
    });

    it('checks the channel’s shape', () => {
      const webhookUrl = 'https://hooks.slack.com/services/T/B/x';
      expect(() => provider.config.parse({ webhookUrl, channel: 'api alerts' })).toThrow(/#api-alerts/);
      expect(provider.config.parse({ webhookUrl, channel: '#api-alerts' }).channel).toBe('#api-alerts');
    });
  });
});
