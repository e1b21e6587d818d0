import { describe, expect, it } from 'vitest';
import { assertProcessArgs, assertPublishOptions, assertQueueName, instrument, InvalidInputError } from '../src/index.js';

describe('queue input guards', () => {
  it('accepts the options the contract allows', () => {
    expect(() => assertQueueName('webhook-delivery.v1_x')).not.toThrow();
    expect(() =>
      assertPublishOptions({ jobId: 'order:42', delayMs: 0, priority: 1, attempts: 3, backoff: { type: 'exponential', delayMs: 100 } }),
    ).not.toThrow();
    expect(() => assertPublishOptions(undefined)).not.toThrow();
  });

  it.each([
    [{ priority: 0 }, 'priority'],
    [{ priority: 1.5 }, 'priority'],
    [{ attempts: 0 }, 'attempts'],
    [{ delayMs: -1 }, 'delayMs'],
    [{ jobId: '' }, 'jobId'],
    [{ jobId: 'a\nb' }, 'jobId'],
    [{ backoff: { type: 'linear', delayMs: 1 } }, 'backoff'],
  ])('rejects %j naming %s', (opts, field) => {
    expect(() => assertPublishOptions(opts)).toThrow(new RegExp(`^${field}`));
    expect(() => assertPublishOptions(opts)).toThrow(InvalidInputError);
  });

  it('rejects queue names a backend cannot store', () => {
    for (const bad of ['', 'a:b', '-x', 'a b', 'x'.repeat(129), 7]) expect(() => assertQueueName(bad)).toThrow(InvalidInputError);
  });

  it('runs before a queue provider sees the call', async () => {
    let calls = 0;
    const { proxy } = instrument(
      { publish: async (..._args: unknown[]) => ++calls },
      { capability: 'queue', provider: 'x', secrets: [], emit: () => undefined },
    );
    await expect(proxy.publish('q', 1, { attempts: 0 })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(proxy.publish('bad:name', 1)).rejects.toBeInstanceOf(InvalidInputError);
    expect(calls).toBe(0);
    expect(await proxy.publish('q', 1, { attempts: 2 })).toBe(1);
  });
});

describe('assertProcessArgs', () => {
  it('checks the queue name, the handler and the concurrency', () => {
    const h = async () => undefined;
    expect(() => assertProcessArgs('q', h, { concurrency: 5 })).not.toThrow();
    expect(() => assertProcessArgs('q', h, { concurrency: 0 })).toThrow(/^concurrency/);
    expect(() => assertProcessArgs('q', 'nope', undefined)).toThrow(InvalidInputError);
    expect(() => assertProcessArgs('a:b', h, undefined)).toThrow(InvalidInputError);
  });
});
