// The app image's HEALTHCHECK (`node /app/dist/healthcheck.js`): GET /admin/health of the running
// `apigate serve`, at the address it wrote to <data dir>/serve.json when it started listening.
// Exits 0 for 200 (healthy or degraded), 1 otherwise, with one line saying why. Kept apart from
// the CLI so a check every 30 s loads no database driver or provider.
import path from 'node:path';
import { readServeAddress, serveAddressFile } from './serve-address.js';

const dataDir = path.resolve(process.env.APIGATE_DATA_DIR?.trim() || './data');
const address = readServeAddress(dataDir);
if (!address) {
  console.error(`unhealthy: ${serveAddressFile(dataDir)} not found (apigate serve is not listening yet)`);
  process.exit(1);
}
try {
  const res = await fetch(`${address.url}/admin/health`, { signal: AbortSignal.timeout(4000) });
  const body = (await res.json().catch(() => ({}))) as { status?: string };
  console.log(`${res.ok ? 'ok' : 'unhealthy'}: ${address.url}/admin/health answered ${res.status} ${body.status ?? ''}`.trim());
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  console.error(`unhealthy: ${address.url}/admin/health: ${(err as Error).message}`);
  process.exit(1);
}
