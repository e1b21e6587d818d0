import { assertValidManifest, createForTest, describeQueueProvider } from '@apigate/provider-testkit';
import { describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { backoffDelay } from '../src/index.js';

describe('provider-memory-queue', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  it('computes backoff like BullMQ: fixed stays, exponential doubles from the base', () => {
    expect([1, 2, 3].map((n) => backoffDelay({ type: 'fixed', delayMs: 100 }, n))).toEqual([100, 100, 100]);
    expect([1, 2, 3, 4].map((n) => backoffDelay({ type: 'exponential', delayMs: 100 }, n))).toEqual([100, 200, 400, 800]);
    expect(backoffDelay(undefined, 3)).toBe(0);
  });

  it('forgets the oldest completed ids past keepCompleted, so their jobId can be published again', async () => {
    const { provider: queue } = await createForTest(provider, { keepCompleted: '1' });
    const done: string[] = [];
    let wake: () => void = () => undefined;
    const worker = queue.process('q', async (job) => {
      done.push(job.id);
      wake();
    });
    const ran = (n: number) => new Promise<void>((resolve) => {
      wake = () => done.length >= n && resolve();
      wake();
    });
    await queue.publish('q', 1, { jobId: 'a' });
    await ran(1);
    await queue.publish('q', 2, { jobId: 'b' });
    await ran(2);
    await expect.poll(async () => (await queue.stats('q')).active).toBe(0);
    expect(await queue.publish('q', 3, { jobId: 'b' })).toEqual({ id: 'b', duplicate: true });
    expect(await queue.publish('q', 4, { jobId: 'a' })).toEqual({ id: 'a', duplicate: false });
    await ran(3);
    await worker.close();
    await queue.close();
  });

  it('rejects calls after close()', async () => {
    const { provider: queue } = await createForTest(provider);
    await queue.close();
    await expect(queue.publish('q', 1)).rejects.toThrow(/closed/);
  });
});

describeQueueProvider({
  name: 'memory queue conformance',
  create: async () => (await createForTest(provider)).provider,
  features: provider.features,
});
