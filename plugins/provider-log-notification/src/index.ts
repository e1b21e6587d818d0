import {
  assertNotification,
  defineProvider,
  fields,
  type Logger,
  type Notification,
  type NotificationProvider,
  type Severity,
  z,
} from '@apigate/kernel';

/** pino level per severity: `critical` is `fatal`, the level log pipelines page on. */
const LEVELS: Record<Severity, 'info' | 'warn' | 'error' | 'fatal'> = {
  info: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'fatal',
};

/** A notification as the log provider recorded it. */
export interface LoggedNotification extends Notification {
  loggedAt: Date;
}

/** Logs each notification at its severity's level and keeps the last `keepLast`. */
export class LogNotification implements NotificationProvider {
  private readonly kept: LoggedNotification[] = [];

  constructor(
    private readonly keepLast: number,
    private readonly logger: Logger,
  ) {}

  async notify(n: Notification): Promise<void> {
    assertNotification(n);
    const { title, ...rest } = n;
    this.logger[LEVELS[n.severity]]({ notification: { ...rest, occurredAt: n.occurredAt.toISOString() } }, title);
    if (this.keepLast > 0) {
      this.kept.push({ ...n, ...(n.fields ? { fields: { ...n.fields } } : {}), loggedAt: new Date() });
      if (this.kept.length > this.keepLast) this.kept.splice(0, this.kept.length - this.keepLast);
    }
  }

  /** The last notifications logged, oldest first. */
  notifications(): LoggedNotification[] {
    return this.kept.map((n) => ({ ...n }));
  }

  clear(): void {
    this.kept.length = 0;
  }

  async check() {
    return { status: 'connected' as const, detail: `logging only; ${this.kept.length} notifications kept` };
  }

  async close() {}
}

export default defineProvider({
  capability: 'notification',
  name: 'log',
  description: 'Logs notifications at a level matching their severity (development)',
  config: z.object({
    keepLast: fields.int({ min: 0 }).default(100).describe('how many recent notifications to keep in memory for inspection (0 keeps none)'),
  }),
  env: { keepLast: 'NOTIFICATION_LOG_KEEP_LAST' },
  create: (config, ctx) => new LogNotification(config.keepLast, ctx.logger),
});
