// Queue throughput: the Redis queue provider as the gateway sees it (made from its definition and
// wrapped by the kernel's instrument()) versus raw BullMQ, on the same Redis, in one run.
// Publish: JOBS publishes with 1 and 50 calls in flight. Process: JOBS no-op jobs already queued,
// drained by one worker with concurrency 1 and 50. Prints jobs/s and ratios; asserts nothing.
//
//   pnpm --filter '@apigate/bench...' run build && node bench/queue.mjs
//   REDIS_URL=redis://host:6379 JOBS=5000 ROUNDS=5 node bench/queue.mjs
//
// Two raw baselines: "raw-same" gives BullMQ the job options the provider sends (a UUID job id,
// lowest priority for jobs without one, bounded completed set), so the difference to the provider
// is the wrapper itself; "raw-plain" is BullMQ's defaults (counter ids, no priority, keeps every
// completed job), so the difference is what the contract's semantics cost.

import { randomBytes, randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { instrument, silentLogger } from '@apigate/kernel';
import redisQueue, { connectionOptions } from '@apigate/provider-redis-queue';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const JOBS = Number(process.env.JOBS ?? 5_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const CONCURRENCIES = [1, 50];
const prefix = `bench-queue-${randomBytes(4).toString('hex')}`;
const payload = { event: 'invoice.paid', id: 'in_123', amount: 4200 };
const config = redisQueue.config.parse({ url: URL, prefix });
const SAME_OPTS = { priority: 2 ** 21 - 1, attempts: 1, removeOnComplete: { count: config.keepCompleted }, removeOnFail: false };

async function makeProvider() {
  const emit = () => {};
  const raw = await redisQueue.create(config, { capability: 'queue', provider: 'redis', logger: silentLogger(), dataDir: '.', emit });
  return instrument(raw, { capability: 'queue', provider: 'redis', secrets: [], emit }).proxy;
}

const provider = await makeProvider();
const conns = connectionOptions(config, 'bench');
const commands = new Redis({ ...conns.commands, lazyConnect: false });
const workerConn = new Redis({ ...conns.workers, lazyConnect: false });
const rawQueues = new Map();
const rawQueue = (name) => {
  if (!rawQueues.has(name)) rawQueues.set(name, new Queue(name, { connection: commands, prefix }));
  return rawQueues.get(name);
};

let queueNo = 0;
const freshQueue = (label) => `${label}-${++queueNo}`;

/**
 * Wall-clock jobs/s, and this process's CPU per job (µs): the part the wrapper adds, far less
 * swayed than wall time by other load on the machine.
 */
function meter() {
  const started = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { rate: JOBS / ((performance.now() - started) / 1000), cpuUs: (used.user + used.system) / JOBS };
  };
}

/** `op()` JOBS times with `inFlight` calls at once. */
async function timedPublishes(op, inFlight) {
  let next = 0;
  const lane = async () => {
    while (next++ < JOBS) await op();
  };
  const stop = meter();
  await Promise.all(Array.from({ length: inFlight }, lane));
  return stop();
}

const impls = {
  provider: {
    publish: (q) => () => provider.publish(q, payload),
    async preload(q) {
      for (let i = 0; i < JOBS; i += 500) {
        await provider.publishMany(
          q,
          Array.from({ length: Math.min(500, JOBS - i) }, () => ({ payload })),
        );
      }
    },
    work: (q, concurrency, handler) => provider.process(q, handler, { concurrency }),
  },
  'raw-same': {
    publish: (q) => () => rawQueue(q).add('job', payload, { ...SAME_OPTS, jobId: randomUUID() }),
    async preload(q) {
      for (let i = 0; i < JOBS; i += 500) {
        const n = Math.min(500, JOBS - i);
        await rawQueue(q).addBulk(
          Array.from({ length: n }, () => ({ name: 'job', data: payload, opts: { ...SAME_OPTS, jobId: randomUUID() } })),
        );
      }
    },
    work: (q, concurrency, handler) => new Worker(q, handler, { connection: workerConn, prefix, concurrency }),
  },
  'raw-plain': {
    publish: (q) => () => rawQueue(q).add('job', payload),
    async preload(q) {
      for (let i = 0; i < JOBS; i += 500) {
        await rawQueue(q).addBulk(Array.from({ length: Math.min(500, JOBS - i) }, () => ({ name: 'job', data: payload })));
      }
    },
    work: (q, concurrency, handler) => new Worker(q, handler, { connection: workerConn, prefix, concurrency }),
  },
};

/** Drains JOBS queued no-op jobs with one worker, measured from worker start to the last handler call. */
async function timedProcessing(impl, concurrency) {
  const q = freshQueue('process');
  await impl.preload(q);
  let done = 0;
  let finish;
  const all = new Promise((resolve) => {
    finish = resolve;
  });
  const stop = meter();
  const worker = impl.work(q, concurrency, async () => {
    if (++done === JOBS) finish();
  });
  await all;
  const result = stop();
  await worker.close();
  return result;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = {};
const record = (key, value) => {
  results[key] ??= [];
  results[key].push(value);
};

// Warm-up: scripts loaded, connections open, JIT warm on every path measured.
for (const impl of Object.values(impls)) {
  for (const c of CONCURRENCIES) {
    await timedPublishes(impl.publish(freshQueue('warmup')), c);
    await timedProcessing(impl, c);
  }
}

for (let round = 0; round < ROUNDS; round++) {
  // Alternate the order each round so drift in machine load does not favour one side.
  const names = round % 2 ? Object.keys(impls).reverse() : Object.keys(impls);
  for (const c of CONCURRENCIES) {
    for (const name of names) record(`publish c=${c} ${name}`, await timedPublishes(impls[name].publish(freshQueue('publish')), c));
    for (const name of names) record(`process c=${c} ${name}`, await timedProcessing(impls[name], c));
  }
}

console.log(`queue bench: ${JOBS} no-op jobs per run, median of ${ROUNDS} rounds, Redis ${URL}, load ${loadavg()[0].toFixed(2)}`);
console.log(
  'jobs/s (ratio = provider / raw)           provider   raw-same  raw-plain  ratio-same  ratio-plain   CPU µs/job: provider  raw-same  raw-plain',
);
for (const op of ['publish', 'process']) {
  for (const c of CONCURRENCIES) {
    const runs = ['provider', 'raw-same', 'raw-plain'].map((n) => results[`${op} c=${c} ${n}`]);
    const [p, s, r] = runs.map((xs) => median(xs.map((x) => x.rate)));
    const cpu = runs.map((xs) =>
      median(xs.map((x) => x.cpuUs))
        .toFixed(0)
        .padStart(10),
    );
    console.log(
      `${`${op}, concurrency ${c}`.padEnd(40)}${p.toFixed(0).padStart(10)}${s.toFixed(0).padStart(11)}${r.toFixed(0).padStart(11)}` +
        `${(p / s).toFixed(2).padStart(12)}${(p / r).toFixed(2).padStart(13)}${' '.repeat(12)}${cpu.join('')}`,
    );
  }
}

// Clean up everything under the bench prefix.
await provider.close();
await Promise.all([...rawQueues.values()].map((q) => q.close()));
let cursor = '0';
do {
  const [next, keys] = await commands.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
  cursor = next;
  if (keys.length) await commands.unlink(keys);
} while (cursor !== '0');
await commands.quit();
await workerConn.quit();
