// Cache throughput and latency: the Redis cache provider as the gateway sees it (made from its
// definition and wrapped by the kernel's instrument()) versus raw ioredis, on the same Redis,
// with the same number of calls in flight, in one run. Prints figures; asserts nothing.
//
//   pnpm --filter '@apigate/bench...' run build && node bench/cache.mjs
//   REDIS_URL=redis://host:6379 OPS=20000 CONCURRENCY=50 ROUNDS=11 REDIS_AUTO_PIPELINING=true node bench/cache.mjs

import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { instrument, silentLogger } from '@apigate/kernel';
// The provider's own script and connection options, so the raw runs compare like with like.
import redisCache, { INCREMENT_LUA, redisOptions } from '@apigate/provider-redis-cache';
import { Redis } from 'ioredis';

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const OPS = Number(process.env.OPS ?? 20_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 50);
const ROUNDS = Number(process.env.ROUNDS ?? 11);
const KEYS = 1000;
const TTL_MS = 60_000;
const prefix = `bench:cache:${randomBytes(4).toString('hex')}:`;
const value = randomBytes(100);

const config = redisCache.config.parse({ url: URL, keyPrefix: prefix, autoPipelining: process.env.REDIS_AUTO_PIPELINING ?? 'false' });

async function makeProvider() {
  const emit = () => {};
  const raw = await redisCache.create(config, { capability: 'cache', provider: 'redis', logger: silentLogger(), dataDir: '.', emit });
  return instrument(raw, { capability: 'cache', provider: 'redis', secrets: [], emit }).proxy;
}

/** Raw ioredis clients: one with the provider's own connection options, one as `new Redis(url)` leaves it. */
function rawClient(options) {
  const client = options ? new Redis(options) : new Redis(URL);
  client.defineCommand('benchIncrement', { numberOfKeys: 1, lua: INCREMENT_LUA });
  return client;
}

/** Runs `op(i)` OPS times with CONCURRENCY calls in flight; returns ops/s and latency percentiles. */
async function measure(op) {
  const latencies = new Float64Array(OPS);
  let next = 0;
  const worker = async () => {
    while (next < OPS) {
      const i = next++;
      const t = performance.now();
      await op(i);
      latencies[i] = performance.now() - t;
    }
  };
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  latencies.sort();
  const pct = (p) => latencies[Math.min(OPS - 1, Math.floor((p / 100) * OPS))];
  // Client CPU per call: what the wrapper adds, and far less swayed by other load on the machine than wall time.
  return { opsPerSec: OPS / seconds, p50: pct(50), p99: pct(99), cpuUs: (used.user + used.system) / OPS };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const cache = await makeProvider();
const same = rawClient(redisOptions(config).options);
const plain = rawClient();
await Promise.all([same, plain].map((c) => new Promise((resolve) => (c.status === 'ready' ? resolve() : c.once('ready', resolve)))));

const rawOps = (client) => ({
  get: (i) => client.getBuffer(`${prefix}k${i % KEYS}`),
  set: (i) => client.set(`${prefix}k${i % KEYS}`, value, 'PX', TTL_MS),
  increment: (i) => client.benchIncrement(`${prefix}n${i % KEYS}`, 1, String(TTL_MS)),
});
const providerOps = {
  get: (i) => cache.get(`k${i % KEYS}`),
  set: (i) => cache.set(`k${i % KEYS}`, value, { ttlMs: TTL_MS }),
  increment: (i) => cache.increment(`n${i % KEYS}`, 1, { ttlMs: TTL_MS }),
};
const impls = { provider: providerOps, 'raw-same': rawOps(same), 'raw-plain': rawOps(plain) };

try {
  await cache.setMany(
    Array.from({ length: KEYS }, (_, i) => [`k${i}`, value]),
    { ttlMs: TTL_MS },
  );
  console.log(`cache bench: ${URL}, ${OPS} ops per run, ${CONCURRENCY} in flight, median of ${ROUNDS} rounds, 100-byte values`);
  console.log(`provider auto-pipelining: ${config.autoPipelining}`);
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log('provider  = definition.create() + kernel instrument(), as the gateway calls it');
  console.log("raw-same  = ioredis with the provider's connection options (timeouts, no offline queue): the wrapper's cost");
  console.log('raw-plain = new Redis(url) with ioredis defaults\n');
  console.log('op         impl           ops/s    p50 ms   p99 ms  CPU us/op');
  const summary = [];
  for (const op of ['get', 'set', 'increment']) {
    const runs = Object.fromEntries(Object.keys(impls).map((k) => [k, []]));
    // Warm every path (JIT, script cache), then alternate so drift on a busy machine hits all alike.
    for (const impl of Object.keys(impls)) await measure(impls[impl][op]);
    for (let r = 0; r < ROUNDS; r++) for (const impl of Object.keys(impls)) runs[impl].push(await measure(impls[impl][op]));
    const agg = {};
    for (const [impl, rs] of Object.entries(runs)) {
      const m = (f) => median(rs.map((x) => x[f]));
      const a = { opsPerSec: m('opsPerSec'), p50: m('p50'), p99: m('p99'), cpuUs: m('cpuUs') };
      agg[impl] = a;
      console.log(
        `${op.padEnd(10)} ${impl.padEnd(11)} ${a.opsPerSec.toFixed(0).padStart(9)} ${a.p50.toFixed(3).padStart(8)} ${a.p99.toFixed(3).padStart(8)} ${a.cpuUs.toFixed(2).padStart(10)}`,
      );
    }
    summary.push([op, agg.provider, agg['raw-same'], agg['raw-plain']]);
  }
  console.log('\nprovider vs raw-same (goal: ops/s ratio >= 0.90, CPU ratio <= 1.10)        vs raw-plain');
  console.log('op         ops/s ratio  p50 ratio  p99 ratio  CPU ratio      ops/s ratio');
  for (const [op, p, s, d] of summary) {
    const r = (a, b) => (a / b).toFixed(3).padStart(10);
    console.log(
      `${op.padEnd(10)} ${r(p.opsPerSec, s.opsPerSec)} ${r(p.p50, s.p50)} ${r(p.p99, s.p99)} ${r(p.cpuUs, s.cpuUs)}   ${r(p.opsPerSec, d.opsPerSec)}`,
    );
  }
} finally {
  await cache.clear();
  await cache.close();
  same.disconnect();
  plain.disconnect();
}
