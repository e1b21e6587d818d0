// Storage bench: upload and download 1 MiB and 100 MiB objects through the S3 provider against a
// local s3rver, sampling RSS during each transfer. Streaming means the peak stays flat whatever the
// object size: uploads hold at most partSize x queueSize in parts, downloads one socket buffer.
//
//   pnpm --filter '@apigate/provider-s3-storage...' run build && node bench/storage.mjs [MiB ...]
//
// Sizes default to 1 and 100 MiB; objects under 10 MiB are transferred 20 times for a steadier rate.
//
// s3rver runs in its own child process, and each measured transfer runs in a fresh worker
// process, so every figure is the provider's own memory from a clean baseline.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

const MiB = 1024 * 1024;
const BUCKET = 'bench';
const [role, ...args] = process.argv.slice(2);

if (role === '--server') await server();
else if (role === '--worker') await worker(...args);
else await main(process.argv.slice(2));

/** Forks this script in `mode` and resolves with the first message it sends. */
function child(mode, ...rest) {
  const proc = fork(import.meta.filename, [mode, ...rest], {
    stdio: 'inherit',
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  const first = new Promise((resolve, reject) => {
    proc.once('message', resolve);
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`${mode} exited with code ${code} before reporting`)));
  });
  return { proc, first };
}

async function server() {
  const { default: S3rver } = await import('s3rver');
  const directory = mkdtempSync(path.join(tmpdir(), 'apigate-bench-s3rver-'));
  const s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: BUCKET }] });
  const { port } = await s3rver.run();
  process.send({ port });
  process.once('disconnect', async () => {
    await s3rver.close();
    rmSync(directory, { recursive: true, force: true });
    process.exit(0);
  });
}

/** `size` bytes in 64 KiB chunks of one reused pattern, so the source itself allocates nothing. */
function source(size) {
  const chunk = Buffer.alloc(64 * 1024, 'apigate-bench-');
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < size; sent += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, size - sent));
    })(),
  );
}

/** Runs `fn` while sampling RSS every 10 ms; returns seconds taken and the peak RSS seen. */
async function measured(fn) {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  const started = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  return { seconds: (performance.now() - started) / 1000, peak: Math.max(peak, process.memoryUsage.rss()) };
}

async function worker(endpoint, op, sizeText, runsText) {
  const [size, runs] = [Number(sizeText), Number(runsText)];
  const { default: s3 } = await import('@apigate/provider-s3-storage');
  const { silentLogger } = await import('@apigate/kernel');
  const config = s3.config.parse({ bucket: BUCKET, endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  const storage = await s3.create(config, { capability: 'storage', provider: 's3', logger: silentLogger(), dataDir: tmpdir(), emit() {} });
  const key = `bench/${size}`;
  try {
    // Warm up sockets, JIT and the SDK's lazily loaded parts so the baseline is honest.
    await storage.put('warmup', source(64 * 1024));
    await (await storage.get('warmup')).body.toArray();
    const baseline = process.memoryUsage.rss();
    let read = 0;
    const m = await measured(async () => {
      for (let i = 0; i < runs; i++) {
        if (op === 'upload') await storage.put(key, source(size), { contentType: 'application/octet-stream' });
        else for await (const chunk of (await storage.get(key)).body) read += chunk.length;
      }
    });
    if (op === 'download' && read !== size * runs) throw new Error(`downloaded ${read} bytes, expected ${size * runs}`);
    process.send({ ...m, baseline, partSizeMb: config.partSizeMb, queueSize: config.queueSize });
  } finally {
    await storage.close();
    process.disconnect();
  }
}

async function main(args) {
  const mb = (bytes) => (bytes / MiB).toFixed(1);
  const s3rver = child('--server');
  const { port } = await s3rver.first;
  s3rver.proc.removeAllListeners('exit');
  const endpoint = `http://127.0.0.1:${port}`;
  const rows = [];
  let settings = '';
  try {
    const sizes = args.length ? args.map(Number) : [1, 100];
    for (const [size, runs] of sizes.map((n) => [n * MiB, n < 10 ? 20 : 1])) {
      for (const op of ['upload', 'download']) {
        const w = child('--worker', endpoint, op, String(size), String(runs));
        const m = await w.first;
        settings = `partSize ${m.partSizeMb} MiB x queueSize ${m.queueSize}`;
        rows.push({
          object: `${mb(size)} MiB x${runs}`,
          op,
          'MB/s': ((size * runs) / 1e6 / m.seconds).toFixed(1),
          'baseline RSS MiB': mb(m.baseline),
          'peak RSS MiB': mb(m.peak),
          'peak - baseline MiB': mb(m.peak - m.baseline),
        });
      }
    }
    console.log(`storage/s3 through the provider against s3rver on 127.0.0.1 (${settings}); each row in a fresh process`);
    console.table(rows);
  } finally {
    s3rver.proc.disconnect();
  }
}
