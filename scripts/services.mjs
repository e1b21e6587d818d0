// Makes sure the services the tests talk to are up before any test starts. Redis runs on
// this machine kind already; where it does not, it is installed and started here, so a
// fresh machine needs nothing done by hand. Pebble and Chromium (web browser tests) are installed here when missing. Everything
// else (S3, SMTP, OIDC, Pebble itself) is started by the tests themselves.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

const REDIS_HOST = '127.0.0.1';
const REDIS_PORT = 6379;

function ping(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

async function waitFor(check, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
}

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

async function ensureRedis() {
  if (await ping(REDIS_HOST, REDIS_PORT)) return console.log(`services: redis on ${REDIS_HOST}:${REDIS_PORT} is up`);
  if (!has('redis-server')) {
    console.log('services: installing redis-server from Debian packages');
    execSync('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server', { stdio: 'inherit' });
  }
  console.log('services: starting redis-server');
  execSync(
    `redis-server --daemonize yes --bind 127.0.0.1 --port ${REDIS_PORT} --save "" --appendonly no --dir /tmp --logfile /tmp/apigate-redis.log`,
    { stdio: 'inherit' },
  );
  await waitFor(() => ping(REDIS_HOST, REDIS_PORT), 'redis');
  console.log('services: redis is up');
}

// Pebble (Let's Encrypt's test CA) and pebble-challtestsrv: the provider-acme tests start them
// on free ports themselves; openssl makes Pebble's HTTPS certificate there.
function ensurePebble() {
  const missing = ['pebble', 'pebble-challtestsrv', 'openssl'].filter((cmd) => !has(cmd));
  if (missing.length === 0) return console.log('services: pebble is installed');
  const packages = missing.includes('openssl') ? 'pebble openssl' : 'pebble';
  console.log(`services: installing ${packages} from Debian packages (missing: ${missing.join(', ')})`);
  execSync(`apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${packages}`, { stdio: 'inherit' });
}

// Chromium for the @apigate/web browser tests (playwright-core drives it; it downloads no browser).
function ensureChromium() {
  const paths = [process.env.CHROMIUM_PATH, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].filter(Boolean);
  if (paths.some((p) => existsSync(p))) return console.log('services: chromium is installed');
  console.log("services: installing chromium from Debian packages (for the web pages' browser tests)");
  execSync('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium', { stdio: 'inherit' });
}

await ensureRedis();
ensurePebble();
ensureChromium();
