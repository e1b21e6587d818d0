import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { describeError, type KernelEvents, type Logger, type Notification, type ProviderErrorEvent, silentLogger } from '@apigate/kernel';
import { matchesEvent } from './settings.js';

/** Kernel events the router knows how to turn into a notification. */
export const ALERTABLE_EVENTS = ['provider.error'] as const;

export interface AlertRouterOptions {
  /** Where kernel events come from (`kernel.events`). */
  events: Pick<EventEmitter<KernelEvents>, 'on' | 'off'>;
  /** The `notification.events` list: names, `*` matching any run of characters. */
  patterns: readonly string[];
  /** At most one alert per (capability, provider, operation) in this many ms; 0 sends every one. */
  intervalMs: number;
  /** Queues an alert (the outbox's `notify`). */
  send(n: Notification): Promise<unknown>;
  /**
   * Sends an alert without the queue (the notification provider itself), for events about the
   * queue: when the queue is what fails, an alert queued on it would not arrive.
   */
  sendDirect?: ((n: Notification) => Promise<unknown>) | undefined;
  /** Clock, for tests. */
  now?: () => number;
  logger?: Logger;
}

interface KeyState {
  lastSentAt: number;
  suppressed: number;
}

/**
 * Routes the kernel events named by `notification.events` to the notification outbox, rate
 * limited per (capability, provider, operation): the first event in an interval is sent, the
 * rest are counted, and the next one sent after the interval says how many were held back.
 *
 * Events about the notification capability are never routed: an alert that a notification
 * failed would go through the same failing provider, fail again and raise the next event, a
 * loop with nothing delivered. Those are left to the log (the server logs every provider error).
 */
export class AlertRouter {
  private readonly state = new Map<string, KeyState>();
  private readonly pending = new Set<Promise<void>>();
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly listener = (e: ProviderErrorEvent) => this.handle(e);
  private closed = false;
  /** What the router did with the events it heard, for logs and tests. */
  readonly counts = { sent: 0, suppressed: 0, skipped: 0 };
  /** Whether `provider.error` is among the routed events. */
  readonly active: boolean;

  constructor(private readonly opts: AlertRouterOptions) {
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? silentLogger();
    this.active = matchesEvent(opts.patterns, 'provider.error');
    const unknown = opts.patterns.filter((p) => !ALERTABLE_EVENTS.some((e) => matchesEvent([p], e)));
    if (unknown.length) {
      this.logger.warn(
        `notification.events: ${unknown.join(', ')} names no event the gateway raises (known: ${ALERTABLE_EVENTS.join(', ')})`,
      );
    }
    if (this.active) opts.events.on('provider.error', this.listener);
  }

  /** Sends, counts or skips one event; returns what it did (for logs and tests). */
  handle(e: ProviderErrorEvent): 'sent' | 'suppressed' | 'skipped' {
    const outcome = this.route(e);
    this.counts[outcome]++;
    return outcome;
  }

  private route(e: ProviderErrorEvent): 'sent' | 'suppressed' | 'skipped' {
    if (this.closed || e.capability === 'notification') return 'skipped';
    const key = `${e.capability}/${e.provider}/${e.operation}`;
    const now = this.now();
    const s = this.state.get(key);
    if (s && this.opts.intervalMs > 0 && now - s.lastSentAt < this.opts.intervalMs) {
      s.suppressed++;
      return 'suppressed';
    }
    const suppressed = s?.suppressed ?? 0;
    this.state.set(key, { lastSentAt: now, suppressed: 0 });
    const n = alertFor(e, suppressed);
    const direct = e.capability === 'queue' ? this.opts.sendDirect : undefined;
    const p = (direct ?? this.opts.send)(n).then(
      () => undefined,
      (err: unknown) => this.logger.warn({ alert: n.id }, `could not send the alert "${n.title}": ${describeError(err)}`),
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return 'sent';
  }

  /** Stops listening and waits until the alerts already accepted are queued. Idempotent. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.opts.events.off('provider.error', this.listener);
    }
    await Promise.all([...this.pending]);
  }
}

/** The notification for a provider error; `suppressed` alerts like it were held back since the last one. */
export function alertFor(e: ProviderErrorEvent, suppressed: number): Notification {
  const held = suppressed > 0 ? `\n${suppressed} more like this since the last alert were not sent (rate limit).` : '';
  return {
    id: `alert-${randomUUID()}`,
    event: e.type,
    title: `${e.capability}/${e.provider} ${e.operation} failed`,
    text: `${e.message}${held}`,
    // A final failure (nothing will retry it) is an error; a retryable one a warning.
    severity: e.retryable ? 'warning' : 'error',
    fields: {
      capability: e.capability,
      provider: e.provider,
      operation: e.operation,
      retryable: e.retryable ? 'yes' : 'no',
      ...(e.code ? { code: e.code } : {}),
      ...(suppressed > 0 ? { suppressed } : {}),
    },
    occurredAt: e.at,
  };
}
