import { assertNotification, defineProvider, type Notification, type NotificationProvider, z } from '@apigate/kernel';
import { describe, expect, it } from 'vitest';
import {
  createForTest,
  describeCacheProvider,
  describeNotificationProvider,
  rejectionOf,
  sampleNotification,
  suiteFactory,
} from '../src/index.js';

// How a suite builds its provider from `(definition, setup)`: config and secrets through
// createForTest, service hooks around the suite, one timeout for all its tests; the 1.0 form still runs.

const delivered: Notification[] = [];
let lastConfig: Record<string, unknown> | undefined;

/** Keeps what it is notified of; a title of "leak" fails with its token in the message. */
class Recorder implements NotificationProvider {
  constructor(private readonly token: string) {}
  async notify(n: Notification): Promise<void> {
    assertNotification(n);
    if (n.title === 'leak') throw new Error(`refused with token ${this.token}`);
    delivered.push(n);
  }
  async check() {
    return { status: 'connected' as const, latencyMs: 0 };
  }
  async close() {}
}

const def = defineProvider({
  capability: 'notification',
  name: 'recorder',
  description: 'records notifications in memory',
  config: z.object({ channel: z.string(), token: z.string() }),
  secrets: ['token'],
  create: (cfg) => {
    lastConfig = cfg;
    return new Recorder(cfg.token);
  },
});

const TOKEN = 'tk_live_0123456789abcdef';
const services = { started: 0, stopped: 0 };

describeNotificationProvider(def, {
  name: 'definition form',
  // Read per instance: the service the hook starts is up by then.
  config: () => ({ channel: services.started ? 'started' : 'not started' }),
  secrets: { token: TOKEN },
  timeout: 12_345,
  beforeAll: async () => {
    services.started++;
  },
  afterAll: () => {
    services.stopped++;
  },
  received: () => delivered,
  additionalTests: ({ provider }) => {
    it('builds each instance from config and secrets, after the service hook ran once', () => {
      provider();
      expect(services).toEqual({ started: 1, stopped: 0 });
      expect(lastConfig).toEqual({ channel: 'started', token: TOKEN });
    });

    it('masks what it got as secrets, as the kernel does', async () => {
      const err = await rejectionOf(provider().notify(sampleNotification({ title: 'leak' })), 'a refused notification');
      expect(err.message).toMatch(/refused with token/);
      expect(err.message).not.toContain(TOKEN);
    });

    it('gives every test the suite timeout', ({ task }) => {
      expect(task.timeout).toBe(12_345);
    });
  },
});

describe('after the definition-form suite', () => {
  it('stopped its services once', () => {
    expect(services).toEqual({ started: 1, stopped: 1 });
  });
});

describeNotificationProvider({
  name: '1.0 form',
  create: async () => (await createForTest(def, { channel: 'old', token: TOKEN })).provider,
  received: () => delivered,
  additionalTests: ({ provider }) => {
    it('uses its own create and the 30 s default timeout', ({ task }) => {
      provider();
      expect(lastConfig).toEqual({ channel: 'old', token: TOKEN });
      expect(task.timeout).toBe(30_000);
    });
  },
});

describe('suite setup mistakes', () => {
  it('refuses a secret the definition does not declare, naming it', async () => {
    await expect(suiteFactory(def, { config: { token: TOKEN }, secrets: { channel: 'ops' } })()).rejects.toThrow(
      'notification/recorder: channel passed as secrets, but the definition does not declare it in `secrets`, so the kernel would show it unmasked',
    );
  });

  it("merges config, secrets and a failure test's config in that order", async () => {
    const make = suiteFactory(def, { config: { channel: 'a', token: 'from-config' }, secrets: { token: TOKEN } });
    await (await make(() => ({ channel: 'b' }))).close();
    expect(lastConfig).toEqual({ channel: 'b', token: TOKEN });
  });

  it('refuses a definition of another capability', () => {
    expect(() => describeCacheProvider(def as never)).toThrow(
      'the cache conformance suite got notification/recorder, a notification provider',
    );
  });
});
