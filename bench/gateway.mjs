// Proxy throughput and latency on loopback, each server in its own process: the upstream
// alone, nginx proxy_pass (keep-alive to the upstream), a bare undici proxy of about 20 lines,
// the gateway's own Forwarder on raw node:http (the reference: the strongest Node proxy here),
// the peer a Node user would pick (fastify + @fastify/http-proxy + a key check + @fastify/rate-limit
// on Redis), and APIGate (`apigate serve`: key auth + per-key rate limit + monthly quota + metering)
// with memory providers, with Redis, and with Redis on `--workers 2`. Prints requests/s with
// p50/p99 under load (autocannon), p50/p99 of one client at a time (microseconds), CPU µs per
// request, and the ratios against the raw Forwarder the scale-out issue asks for. Every server
// gets the same request (with an X-API-Key) and runs only while it is measured.
//
//   pnpm --filter @apigate/bench run gateway        (build first: pnpm --filter '@apigate/app...' run build)
//   BENCH_SECONDS=10 BENCH_CONNECTIONS=50 REDIS_URL=redis://127.0.0.1:6379 node bench/gateway.mjs
//
// BENCH_ONLY=raw,redis runs some scenarios (direct, nginx, bare, raw, hono, fastify, memory, redis, redis-w2);
// BENCH_PAIRS=8 and BENCH_PAIR_SECONDS=3 set the interleaved runs behind the goal's figures (see interleave());
// BENCH_PROFILE_DIR=/tmp/prof writes a V8 CPU profile of each `apigate serve`.
// nginx: uses `nginx` from PATH; when missing and apt-get is there (as root) it installs Debian's
// nginx-light and says so; otherwise the nginx row is skipped.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(HERE, '../apps/apigate/dist/bin.js');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const LIGHT_REQUESTS = Number(process.env.BENCH_LIGHT_REQUESTS ?? 3000);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PAIRS = Number(process.env.BENCH_PAIRS ?? 8);
const PAIR_SECONDS = Number(process.env.BENCH_PAIR_SECONDS ?? 3);
const work = mkdtempSync(path.join(tmpdir(), 'apigate-bench-gw-'));
// Every Redis key this run writes starts with this, and only those are removed at the end.
const PREFIX = `apigate-bench-${randomUUID()}`;
const children = [];
// Every proxy gets the same request: the ones without a key check get an X-API-Key of an APIGate
// key's length too (and pass it on, as a proxy does), so header parsing costs them what it costs APIGate.
const PASSED_KEY = `ak_${randomUUID().replaceAll('-', '')}${'0'.repeat(8)}`;

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** Runs `node -e code` (ESM) in its own process; resolves once it prints `ready`. */
async function nodeProcess(name, code, env = {}) {
  const profile = process.env.BENCH_PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`, `--cpu-prof-name=${name.replace(/\W+/g, '-')}.cpuprofile`]
    : [];
  // A SIGTERM handler makes the child exit normally, so --cpu-prof gets to write its profile.
  const body = `${code}\nprocess.on('SIGTERM', () => process.exit(0));`;
  const child = spawn(process.execPath, [...profile, '--input-type=module', '-e', body], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: HERE,
  });
  children.push(child);
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
  });
  return child;
}

const UPSTREAM = `
import http from 'node:http';
const body = JSON.stringify({ ok: true, forecast: 'sunny', temperature: 21 });
http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'));
`;

// The bare proxy the issue compares with: undici pool, streamed both ways, hop-by-hop headers dropped.
const BARE_PROXY = `
import http from 'node:http';
import { Pool } from 'undici';
const pool = new Pool(process.env.UPSTREAM, { connections: 128, keepAliveTimeout: 4000 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'host', 'trailer']);
const strip = (h) => Object.fromEntries(Object.entries(h).filter(([k]) => !HOP.has(k)));
http.createServer((req, res) => {
  const hasBody = req.headers['content-length'] > 0 || req.headers['transfer-encoding'];
  pool
    .stream({ path: req.url, method: req.method, headers: strip(req.headers), body: hasBody ? req : null }, ({ statusCode, headers }) => {
      res.writeHead(statusCode, strip(headers));
      return res;
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'));
`;

// The gateway's Forwarder on raw node:http and behind hono's node-server adapter: what putting the
// proxy path in front of hono saves (the decision apigate serve makes).
const FORWARDER = (viaHono) => `
import http from 'node:http';
import { Forwarder, RouteTable } from '@apigate/gateway/hotpath';
${viaHono ? "import { Hono } from 'hono'; import { getRequestListener } from '@hono/node-server'; import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';" : ''}
const forwarder = new Forwarder();
const routes = new RouteTable([{ id: 'rt', pathPrefix: '/', upstreamUrl: process.env.UPSTREAM }]);
const identity = { userId: 'usr_1', planId: 'plan_1', keyId: 'key_1' };
let listener = (req, res) => void forwarder.forward(req, res, routes.match(req.url), identity);
${
  viaHono
    ? `const app = new Hono();
app.all('*', async (c) => {
  await forwarder.forward(c.env.incoming, c.env.outgoing, routes.match(c.env.incoming.url), identity);
  return RESPONSE_ALREADY_SENT;
});
listener = getRequestListener(app.fetch);`
    : ''
}
http.createServer(listener).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'));
`;

// The peer row: what a Node user would build instead of APIGate. fastify 5 with @fastify/http-proxy
// (undici via @fastify/reply-from), a key check from an in-process set, and @fastify/rate-limit
// counting per key in Redis (its own ioredis client, limits high enough never to refuse).
const FASTIFY_PEER = `
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';
import rateLimit from '@fastify/rate-limit';
import { Redis } from 'ioredis';
const keys = new Set([process.env.PEER_KEY]);
const app = Fastify({ logger: false });
app.addHook('onRequest', async (req, reply) => {
  if (!keys.has(req.headers['x-api-key'])) return reply.code(401).send({ error: 'unauthorized' });
});
await app.register(rateLimit, {
  max: 1_000_000_000,
  timeWindow: '1 minute',
  redis: new Redis(process.env.REDIS_URL, { connectTimeout: 500, maxRetriesPerRequest: 1 }),
  nameSpace: process.env.PEER_PREFIX,
  keyGenerator: (req) => req.headers['x-api-key'],
});
await app.register(proxy, { upstream: process.env.UPSTREAM, prefix: '/' });
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
console.log('ready');
`;

function ensureNginx() {
  const has = () => spawnSync('sh', ['-c', 'command -v nginx || test -x /usr/sbin/nginx'], { stdio: 'ignore' }).status === 0;
  if (has()) return true;
  const isRoot = process.getuid?.() === 0;
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (!isRoot || !apt) return false;
  console.log('nginx is not installed: running apt-get install -y nginx-light (Debian) for the nginx row');
  let r = spawnSync('apt-get', ['install', '-y', 'nginx-light'], {
    stdio: 'ignore',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'ignore' });
    r = spawnSync('apt-get', ['install', '-y', 'nginx-light'], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  console.log(r.status === 0 ? 'installed nginx-light' : 'could not install nginx-light; skipping nginx');
  return r.status === 0 && has();
}

async function startNginx(upstreamPort, port) {
  const dir = path.join(work, 'nginx');
  rmSync(dir, { recursive: true, force: true });
  execFileSync('mkdir', ['-p', `${dir}/logs`, `${dir}/tmp`]);
  const conf = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}`;
  writeFileSync(`${dir}/nginx.conf`, conf);
  const nginx = spawnSync('sh', ['-c', 'command -v nginx || echo /usr/sbin/nginx'], { encoding: 'utf8' }).stdout.trim();
  const child = spawn(nginx, ['-p', dir, '-c', `${dir}/nginx.conf`], { stdio: 'inherit' });
  children.push(child);
  // nginx prints nothing when ready: wait until it answers.
  for (let i = 0; i < 100; i++) {
    try {
      await (await fetch(`http://127.0.0.1:${port}/`)).arrayBuffer();
      return child;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error('nginx did not start');
}

function apigate(args, env) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`apigate ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Per scenario name: the API key its data folder was set up with (set up once, served each round). */
const prepared = new Map();

/** A data folder with a plan (limits high enough never to refuse), a user, a key and a route; then `apigate serve`. */
async function startApigate(name, upstreamUrl, port, extraEnv, serveArgs = []) {
  const dataDir = path.join(work, name);
  const env = { ...process.env, APIGATE_DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...extraEnv };
  for (const k of Object.keys(env)) if (/_PROVIDER$/.test(k) && !(k in extraEnv)) delete env[k];
  if (!prepared.has(name)) {
    if (extraEnv.QUEUE_PROVIDER === 'redis') apigate(['settings', 'set', 'queue.redis.prefix', extraEnv.BENCH_QUEUE_PREFIX], env);
    apigate(['plans', 'create', 'bench', '--rpm', '1000000000', '--monthly', '1000000000'], env);
    apigate(['users', 'create', 'bench@example.com'], env);
    prepared.set(name, JSON.parse(apigate(['keys', 'create', '--user', 'bench@example.com', '--json'], env)).key);
    apigate(['routes', 'add', '/', upstreamUrl], env);
  }
  const key = prepared.get(name);
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const child = spawn(process.execPath, [...profile, BIN, 'serve', '--port', String(port), '--host', '127.0.0.1', ...serveArgs], {
    env: { ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise((resolve, reject) => {
    const onData = (d) => {
      out += d;
      // With --workers the primary says so once every worker listens.
      if (serveArgs.includes('--workers') ? out.includes('workers serving') : out.includes('apigate listening')) {
        child.stdout.off('data', onData);
        child.stdout.resume(); // keep draining the log
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`apigate serve (${name}) exited with ${code}:\n${out}`)));
  });
  return { child, key };
}

async function stop(child) {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);
/** CPU time (user + system) a process and its children (nginx's workers) have used so far, in µs; undefined where /proc is missing. */
function cpuUs(pid) {
  if (pid === undefined) return undefined;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    let us = (Number(fields[11]) + Number(fields[12])) * TICK_US;
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean))
      us += cpuUs(Number(child)) ?? 0;
    return us;
  } catch {
    return undefined;
  }
}

// The load generator runs in a fresh process each time: one that carried earlier runs' state (its
// heap, its JIT) slowed down after some of them, and a proxy fed more slowly spends more CPU on each
// request (fewer requests per event-loop turn), which skewed the rows measured later.
const CANNON = `
import autocannon from 'autocannon';
const o = JSON.parse(process.env.CANNON);
autocannon({ ...o, pipelining: 1 }, (err, r) => {
  if (err) { console.error(err.message); process.exit(1); }
  const { requests, latency, non2xx, errors, timeouts } = r;
  process.stdout.write(JSON.stringify({ requests, latency, non2xx, errors, timeouts }));
});
`;

function cannon(url, headers, seconds = SECONDS) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CANNON], {
      env: { ...process.env, CANNON: JSON.stringify({ url, connections: CONNECTIONS, duration: seconds, headers }) },
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: HERE,
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`autocannon exited with ${code}`))));
  });
}

/** One client, one request at a time: what a request costs when nothing queues (µs precision). */
async function lightLatency(url, headers) {
  const agent = new Agent({ connections: 1, pipelining: 1 });
  const times = [];
  try {
    for (let i = 0; i < LIGHT_REQUESTS + 300; i++) {
      const t = process.hrtime.bigint();
      const res = await request(url, { headers, dispatcher: agent });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
      if (i >= 300) times.push(Number(process.hrtime.bigint() - t) / 1000);
    }
  } finally {
    await agent.close();
  }
  times.sort((a, b) => a - b);
  const at = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
  return { p50: at(50), p99: at(99) };
}

/** `pids`: the proxy's process (its CPU per request is the steadiest figure on a shared machine) and Redis's, where used. */
async function measure(name, url, headers = {}, pids = {}) {
  await cannon(url, headers).catch(() => undefined); // warm up (pools, JIT)
  const before = { proxy: cpuUs(pids.proxy), redis: cpuUs(pids.redis) };
  const r = await cannon(url, headers);
  const per = (k) => (before[k] === undefined || pids[k] === undefined ? undefined : (cpuUs(pids[k]) - before[k]) / r.requests.total);
  const bad = r.non2xx + r.errors + r.timeouts;
  if (bad > 0) console.log(`  ${name}: ${bad} non-2xx/errors/timeouts of ${r.requests.total}`);
  if (process.env.BENCH_PROFILE_DIR)
    console.log(`  ${name}: ${r.requests.total} requests measured (plus the warm-up and ${LIGHT_REQUESTS + 300} light ones)`);
  const light = await lightLatency(url, headers);
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    lightP50: light.p50,
    lightP99: light.p99,
    cpu: per('proxy'),
    redisCpu: per('redis'),
  };
}

/** The pid of the redis-server at REDIS_URL (its INFO says), for its CPU per request. */
async function redisPid() {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    return Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]) || undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

/**
 * The goal's figures measured so the machine's drift cancels out: a round's runs are minutes apart
 * and this VM's speed moves by a third within that, so the raw Forwarder and each one-process APIGate
 * row run side by side and take the load in turn, a few seconds each (ABBA, so neither always goes
 * first), and each pair of neighbouring runs gives one ratio. Redis's CPU counts on APIGate's side.
 */
async function interleave(running, rpid) {
  const raw = running.find((s) => s.id === 'raw');
  if (!raw || PAIRS < 1) return [];
  const out = [];
  for (const s of running.filter((x) => x.id === 'memory' || x.id === 'redis')) {
    const a = await raw.start();
    const b = await s.start();
    try {
      const load = async (x, pids, seconds) => {
        const url = `${x.url}/weather/today`;
        const before = pids.map(cpuUs);
        const r = await cannon(url, x.headers ?? { 'x-api-key': PASSED_KEY }, seconds);
        const cpu = pids.map((p, i) => cpuUs(p) - before[i]).reduce((m, v) => m + v, 0);
        return { rps: r.requests.average, cpu: cpu / r.requests.total };
      };
      const pidsA = [a.child.pid];
      const pidsB = [b.child.pid, ...(b.usesRedis && rpid ? [rpid] : [])];
      await load(a, pidsA, 5); // warm-up (pools, JIT)
      await load(b, pidsB, 5);
      const rps = [];
      const cpu = [];
      for (let i = 0; i < PAIRS; i++) {
        let ra;
        let rb;
        if (i % 2 === 0) {
          ra = await load(a, pidsA, PAIR_SECONDS);
          rb = await load(b, pidsB, PAIR_SECONDS);
        } else {
          rb = await load(b, pidsB, PAIR_SECONDS);
          ra = await load(a, pidsA, PAIR_SECONDS);
        }
        rps.push(rb.rps / ra.rps);
        cpu.push(rb.cpu / ra.cpu);
      }
      out.push({ name: s.name, rps, cpu });
    } finally {
      await stop(b.child);
      await stop(a.child);
    }
  }
  return out;
}

async function main() {
  const upstreamPort = await freePort();
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const upstream = await nodeProcess('upstream', UPSTREAM, { PORT: String(upstreamPort) });

  const forwarderScenario = (viaHono) => async () => {
    const port = await freePort();
    return {
      url: `http://127.0.0.1:${port}`,
      child: await nodeProcess('forwarder', FORWARDER(viaHono), { PORT: String(port), UPSTREAM: upstreamUrl }),
    };
  };
  const apigateOnRedis = (name, serveArgs) => async () => {
    const port = await freePort();
    const env = {
      CACHE_PROVIDER: 'redis',
      QUEUE_PROVIDER: 'redis',
      REDIS_URL,
      REDIS_KEY_PREFIX: `${PREFIX}:${name}:cache:`,
      BENCH_QUEUE_PREFIX: `${PREFIX}-${name}-queue`,
    };
    const { child, key } = await startApigate(name, upstreamUrl, port, env, serveArgs);
    return { url: `http://127.0.0.1:${port}`, child, headers: { 'x-api-key': key }, usesRedis: true };
  };
  const scenarios = [
    { id: 'direct', name: 'direct upstream', start: async () => ({ url: upstreamUrl }) },
    {
      id: 'nginx',
      name: 'nginx proxy_pass (keep-alive)',
      start: async () => {
        if (!ensureNginx()) return undefined;
        const port = await freePort();
        return { url: `http://127.0.0.1:${port}`, child: await startNginx(upstreamPort, port) };
      },
    },
    {
      id: 'bare',
      name: 'bare undici proxy',
      start: async () => {
        const port = await freePort();
        return {
          url: `http://127.0.0.1:${port}`,
          child: await nodeProcess('bare proxy', BARE_PROXY, { PORT: String(port), UPSTREAM: upstreamUrl }),
        };
      },
    },
    { id: 'hono', name: 'Forwarder behind hono', start: forwarderScenario(true) },
    {
      id: 'fastify',
      name: 'fastify peer (Redis limit)',
      start: async () => {
        const port = await freePort();
        const key = `peer-${randomUUID()}`;
        const env = { PORT: String(port), UPSTREAM: upstreamUrl, PEER_KEY: key, REDIS_URL, PEER_PREFIX: `${PREFIX}:fastify:` };
        return {
          url: `http://127.0.0.1:${port}`,
          child: await nodeProcess('fastify peer', FASTIFY_PEER, env),
          headers: { 'x-api-key': key },
          usesRedis: true,
        };
      },
    },
    // Measured right before the APIGate rows it is their reference for (the machine drifts).
    { id: 'raw', name: 'Forwarder on raw node:http', start: forwarderScenario(false) },
    {
      id: 'memory',
      name: 'APIGate, memory cache + queue',
      start: async () => {
        const port = await freePort();
        const { child, key } = await startApigate('memory', upstreamUrl, port, { CACHE_PROVIDER: 'memory', QUEUE_PROVIDER: 'memory' });
        return { url: `http://127.0.0.1:${port}`, child, headers: { 'x-api-key': key } };
      },
    },
    {
      id: 'redis',
      name: 'APIGate, Redis cache + queue',
      start: apigateOnRedis('redis', []),
    },
    {
      id: 'redis-w2',
      name: 'APIGate, Redis, --workers 2',
      start: apigateOnRedis('redis-w2', ['--workers', '2']),
    },
  ];

  console.log(
    `loopback, ${CONNECTIONS} connections, ${SECONDS} s per run (after a warm-up run), best of ${ROUNDS} rounds; light load: ${LIGHT_REQUESTS} sequential requests`,
  );
  const only = process.env.BENCH_ONLY?.split(',').map((x) => x.trim());
  const running = scenarios.filter((x) => !only || only.includes(x.id)).map((s) => ({ ...s, runs: [] }));
  // Rounds interleave the scenarios, so drift on a shared machine spreads over all of them. Each
  // server runs only while it is measured (started and stopped each round): idle servers beside it
  // (three APIGate processes with their timers and Redis connections, nginx, fastify) would tax
  // the one measured, and not all alike.
  const rpid = await redisPid();
  const skipped = new Set();
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of running) {
      if (skipped.has(s)) continue;
      // A scenario that cannot start (no nginx, an apigate build without --workers) is skipped, not fatal.
      const started = await s.start().catch((err) => {
        console.log(`  ${s.name}: skipped (${err.message.split('\n')[0]})`);
        return null;
      });
      if (!started) {
        if (started === undefined) console.log(`  ${s.name}: skipped (nginx not available)`);
        skipped.add(s);
        continue;
      }
      const pids = { proxy: (started.child ?? upstream).pid, ...(started.usesRedis ? { redis: rpid } : {}) };
      s.runs.push(await measure(s.name, `${started.url}/weather/today`, started.headers ?? { 'x-api-key': PASSED_KEY }, pids));
      await stop(started.child);
    }
  }
  const interleaved = await interleave(
    running.filter((s) => !skipped.has(s)),
    rpid,
  );
  await stop(upstream);
  const measured = running.filter((s) => s.runs.length > 0);

  const best = (s) => {
    const byRps = [...s.runs].sort((a, b) => b.rps - a.rps)[0];
    const byLight = [...s.runs].sort((a, b) => a.lightP50 - b.lightP50)[0];
    const cpu = s.runs.map((r) => r.cpu).filter((v) => v !== undefined);
    const redisCpu = s.runs.map((r) => r.redisCpu).filter((v) => v !== undefined);
    return {
      ...byRps,
      lightP50: byLight.lightP50,
      lightP99: byLight.lightP99,
      cpu: cpu.length ? Math.min(...cpu) : undefined,
      redisCpu: redisCpu.length ? Math.min(...redisCpu) : undefined,
    };
  };
  const rows = measured.map((s) => ({ name: s.name, ...best(s) }));
  const pad = (v, n) => String(v).padStart(n);
  console.log(
    `\n${'scenario'.padEnd(32)}${pad('req/s', 9)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('1-client p50 µs', 17)}${pad('p99 µs', 9)}${pad('CPU µs/req', 12)}`,
  );
  for (const r of rows) {
    const cpu = r.cpu === undefined ? 'n/a' : `${r.cpu.toFixed(1)}${r.redisCpu === undefined ? '' : ` +${r.redisCpu.toFixed(1)} redis`}`;
    console.log(
      `${r.name.padEnd(32)}${pad(Math.round(r.rps), 9)}${pad(r.p50, 8)}${pad(r.p99, 8)}${pad(r.lightP50.toFixed(0), 17)}${pad(r.lightP99.toFixed(0), 9)}  ${cpu}`,
    );
  }
  const get = (n) => rows.find((r) => r.name.startsWith(n));
  const direct = get('direct');
  const nginx = get('nginx');
  const bare = get('bare');
  const raw = get('Forwarder on raw');
  const hono = get('Forwarder behind hono');
  const ratio = (a, b) => (a && b ? `${((a.rps / b.rps) * 100).toFixed(0)}%` : 'n/a');
  const totalCpu = (a) => (a?.cpu === undefined ? undefined : a.cpu + (a.redisCpu ?? 0));
  // CPU per request (Redis's included) is the steadier figure on a machine where every process competes for the cores.
  const cpuTimes = (a, b) => (totalCpu(a) && totalCpu(b) ? `${(totalCpu(a) / totalCpu(b)).toFixed(2)}×` : 'n/a');
  console.log('\nratios of throughput:');
  console.log(
    `  bare undici proxy / direct: ${ratio(bare, direct)}   bare undici proxy / nginx: ${ratio(bare, nginx)}   raw Forwarder / bare undici proxy: ${ratio(raw, bare)}`,
  );
  if (raw && hono) {
    console.log(
      `  Forwarder behind hono / on raw node:http: ${ratio(hono, raw)}; hono adds ${((hono.lightP50 - raw.lightP50) / 1000).toFixed(3)} ms at p50 for one client`,
    );
  }
  if (!raw) return;
  // The reference is the project's own Forwarder on raw node:http: the strongest Node proxy in the run.
  const goals = { 'APIGate, memory': 'goal >= 95%', 'APIGate, Redis cache': 'goal >= 90% and <= 1.15× CPU' };
  console.log(
    `\nagainst the raw Forwarder (${Math.round(raw.rps)} req/s, ${raw.cpu?.toFixed(1) ?? 'n/a'} CPU µs/req; nginx: ${nginx?.cpu?.toFixed(1) ?? 'n/a'} CPU µs/req):`,
  );
  for (const g of rows.filter((r) => r.name.startsWith('APIGate') || r.name.startsWith('fastify'))) {
    const goal = Object.entries(goals).find(([n]) => g.name.startsWith(n))?.[1];
    console.log(
      `  ${g.name.padEnd(30)} req/s ${ratio(g, raw).padStart(4)} of raw, CPU per request ${cpuTimes(g, raw)} raw's${nginx?.cpu ? `, ${cpuTimes(g, nginx)} nginx's` : ''}; added at p50 for one client: ${((g.lightP50 - raw.lightP50) / 1000).toFixed(3)} ms${goal ? ` (${goal})` : ''}`,
    );
  }
  // The machine's speed drifts between rounds (other tenants): a ratio of each round's two runs,
  // made minutes apart at most, is steadier than one of two bests that may come from different rounds.
  const rawRuns = measured.find((s) => s.id === 'raw')?.runs;
  const median = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  if (rawRuns && ROUNDS > 1) {
    console.log(`\nthe same, paired by round (median of each round's ratio to that round's raw Forwarder, ${ROUNDS} rounds):`);
    for (const s of measured.filter((x) => x.name.startsWith('APIGate') || x.name.startsWith('fastify'))) {
      const pairs = s.runs.map((r, i) => [r, rawRuns[i]]).filter(([r, w]) => w && r.cpu !== undefined && w.cpu !== undefined);
      if (pairs.length === 0) continue;
      const rps = median(pairs.map(([r, w]) => r.rps / w.rps));
      const cpu = median(pairs.map(([r, w]) => (r.cpu + (r.redisCpu ?? 0)) / w.cpu));
      console.log(`  ${s.name.padEnd(30)} req/s ${(rps * 100).toFixed(0).padStart(4)}% of raw, CPU per request ${cpu.toFixed(2)}× raw's`);
    }
  }
  if (interleaved.length > 0) {
    console.log(
      `\nthe same, interleaved (the raw Forwarder and APIGate running side by side, loaded in turn for ${PAIR_SECONDS} s each, ${PAIRS} pairs in ABBA order; median of the pairs' ratios, lowest-highest pair in brackets):`,
    );
    const range = (xs, f) => `${f(Math.min(...xs))}-${f(Math.max(...xs))}`;
    for (const { name, rps, cpu } of interleaved) {
      const pct = (v) => `${(v * 100).toFixed(0)}%`;
      const times = (v) => `${v.toFixed(2)}×`;
      console.log(
        `  ${name.padEnd(30)} req/s ${pct(median(rps)).padStart(4)} of raw (${range(rps, pct)}), CPU per request ${times(median(cpu))} raw's (${range(cpu, times)})`,
      );
    }
  }
  const peer = get('fastify');
  const redis = get('APIGate, Redis cache');
  if (peer && redis)
    console.log(`  APIGate with Redis / fastify peer: req/s ${ratio(redis, peer)}, CPU per request ${cpuTimes(redis, peer)}`);
  const w2 = get('APIGate, Redis, --workers 2');
  if (w2 && redis) {
    console.log(
      `  --workers 2 / one process (Redis): req/s ${ratio(w2, redis)}; on ${availableParallelism()} core(s) shared with the load generator, the upstream and Redis, so this is not the scaling a dedicated box shows`,
    );
  }
}

try {
  await main();
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } catch {
    // Redis not running: nothing was written there.
  } finally {
    redis.disconnect();
  }
}
