import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { defineProvider, InvalidInputError, type Notification, type NotificationProvider, z } from '@apigate/kernel';

const SEVERITIES = new Set(['info', 'warning', 'error', 'critical']);

/** Appends one JSON object per line; `fsync` per write so a crash loses nothing acknowledged. */
class JsonlNotifier implements NotificationProvider {
  private file: Promise<FileHandle> | undefined;
  private closed = false;

  constructor(readonly filePath: string) {}

  private handle(): Promise<FileHandle> {
    this.file ??= open(this.filePath, 'a', 0o600);
    return this.file;
  }

  async notify(n: Notification): Promise<void> {
    if (!n?.id || !n.title || !n.event) throw new InvalidInputError('notification needs id, event and title');
    if (!SEVERITIES.has(n.severity)) throw new InvalidInputError(`severity must be one of ${[...SEVERITIES].join(', ')}`);
    const fh = await this.handle();
    const occurredAt = n.occurredAt instanceof Date ? n.occurredAt : new Date(n.occurredAt);
    await fh.appendFile(`${JSON.stringify({ ...n, occurredAt: occurredAt.toISOString() })}\n`);
    await fh.sync();
  }

  async check() {
    const started = performance.now();
    try {
      await this.handle();
      return { status: 'connected' as const, latencyMs: performance.now() - started, detail: this.filePath };
    } catch (err) {
      return {
        status: 'error' as const,
        latencyMs: performance.now() - started,
        error: `cannot open ${this.filePath}: ${(err as Error).message}`,
      };
    }
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    await (await this.file?.catch(() => undefined))?.close();
  }
}

export default defineProvider({
  capability: 'notification',
  name: 'jsonl',
  description: 'Appends notifications as JSON lines to a file',
  config: z.object({
    path: z.string().min(1).optional().describe('a file path; defaults to <data dir>/notifications.jsonl'),
  }),
  env: { path: 'JSONL_NOTIFICATION_PATH' },
  create: (config, ctx) => new JsonlNotifier(config.path ?? path.join(ctx.dataDir, 'notifications.jsonl')),
});
