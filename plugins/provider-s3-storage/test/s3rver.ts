import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
// @ts-expect-error s3rver ships no types
import S3rver from 's3rver';

/** s3rver accepts any SigV4 signature but only this key id (its built-in dummy account). */
export const S3RVER_KEY = 'S3RVER';

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  /** Config strings for the provider, as env vars would give them. */
  config: Record<string, string>;
  close(): Promise<void>;
}

/** An in-process s3rver on a free port with a fresh temp directory and one bucket. */
export async function startS3rver(bucket = 'apigate-test'): Promise<LocalS3> {
  const directory = mkdtempSync(path.join(tmpdir(), 'apigate-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    config: { bucket, endpoint, accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
