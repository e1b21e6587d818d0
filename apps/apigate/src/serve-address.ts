import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Where a running `apigate serve` says it can be reached: `<data dir>/serve.json`, written once the
 * HTTP listener is bound and removed on shutdown. The image's HEALTHCHECK reads it, so the check
 * follows `--port`, `--host` and `APIGATE_PORT` alike instead of guessing the port.
 */
export interface ServeAddress {
  /** A URL this machine reaches the server at (127.0.0.1 when bound to every interface). */
  url: string;
  pid: number;
}

export const serveAddressFile = (dataDir: string): string => path.join(dataDir, 'serve.json');

export function writeServeAddress(dataDir: string, url: string): void {
  const address: ServeAddress = { url, pid: process.pid };
  writeFileSync(serveAddressFile(dataDir), `${JSON.stringify(address)}\n`, { mode: 0o644 });
}

/** Removes the file only if this process wrote it (another server may have started since). */
export function removeServeAddress(dataDir: string): void {
  if (readServeAddress(dataDir)?.pid === process.pid) rmSync(serveAddressFile(dataDir), { force: true });
}

export function readServeAddress(dataDir: string): ServeAddress | undefined {
  try {
    return JSON.parse(readFileSync(serveAddressFile(dataDir), 'utf8')) as ServeAddress;
  } catch {
    return undefined;
  }
}
