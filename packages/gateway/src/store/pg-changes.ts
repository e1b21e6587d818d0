import { describeError, type Logger, silentLogger } from '@apigate/kernel';
import { type SQL, sql } from 'drizzle-orm';
import pg from 'pg';

/** The PostgreSQL channel change notifications travel on: the payload is the entity type (`keys`, `plans`...). */
export const CHANGES_CHANNEL = 'apigate_changes';

/**
 * The statement a write runs inside its transaction next to bumping `change_versions`: PostgreSQL
 * delivers it at COMMIT (never for a rolled-back write) to every instance listening.
 */
export const notifyChangeSql = (entity: string): SQL => sql`SELECT pg_notify(${CHANGES_CHANNEL}, ${entity})`;

export interface ChangeListener {
  /** Resolves once the first LISTEN is in place. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Listens on CHANGES_CHANNEL over a connection of its own (LISTEN cannot share a pool) and calls
 * `onChange(entity)` for each notification. A lost connection is re-opened every `retryMs`; after
 * each reconnect `onChange(undefined)` says "anything may have changed meanwhile" (the caller
 * re-reads every version). The change-version poll stays the fallback while it is down.
 */
export function listenForChanges(
  url: string,
  onChange: (entity: string | undefined) => void,
  opts: { logger?: Logger; retryMs?: number } = {},
): ChangeListener {
  const logger = opts.logger ?? silentLogger();
  const retryMs = opts.retryMs ?? 1000;
  let client: pg.Client | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let connectedOnce = false;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => {
    resolveReady = r;
  });

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url });
    client = c;
    const retry = (err?: unknown) => {
      if (closed || client !== c) return;
      client = undefined;
      c.removeAllListeners('notification');
      c.end().catch(() => undefined);
      logger.warn(
        `change notifications: the PostgreSQL listener connection is down (${err ? describeError(err) : 'ended'}); retrying every ${retryMs} ms`,
      );
      timer = setTimeout(() => void connect(), retryMs);
      timer.unref();
    };
    c.on('error', retry);
    c.on('end', () => retry());
    c.on('notification', (n) => {
      if (n.channel === CHANGES_CHANNEL) onChange(n.payload || undefined);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (err) {
      return retry(err);
    }
    if (connectedOnce) {
      logger.info('change notifications: the PostgreSQL listener is connected again');
      onChange(undefined);
    }
    connectedOnce = true;
    resolveReady();
  };
  void connect();

  return {
    ready,
    async close() {
      closed = true;
      clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
