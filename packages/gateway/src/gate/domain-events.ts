import { describeError, type Logger, silentLogger } from '@apigate/kernel';
import type { ChangeEvent } from '../store/changes.js';
import type { Store } from '../domain/open-store.js';
import type { WebhookDispatcher } from '../delivery/outbound-webhooks.js';

interface KeyRow {
  id: string;
  userId: string;
  name: string;
  prefix: string;
  revokedAt: Date | null;
}
interface UserRow {
  id: string;
  planId: string;
  updatedAt: Date;
}

/**
 * Turns changes to keys and users into `key.created`, `key.revoked` and `plan.changed` webhooks,
 * whoever made them (the admin API here, the CLI or another instance, noticed by the change
 * poll): on each change it compares a snapshot of the keys' and users' few columns with the
 * previous one. Event ids are derived from the change (`key.created:<key id>`...), so every
 * instance that notices it emits the same event and the delivery log keeps one delivery per
 * endpoint. Changes made while no gateway runs are not reported.
 */
export class DomainEventWebhooks {
  #keys = new Map<string, KeyRow>();
  #users = new Map<string, UserRow>();
  #scheduled: Promise<void> | null = null;
  /** The first snapshot, read when the instance starts; comparisons wait for it. */
  #initial: Promise<void>;
  #closed = false;
  readonly #logger: Logger;
  readonly #onChange = (e: ChangeEvent) => {
    if (e.entity === 'keys' || e.entity === 'users') this.#schedule();
  };

  constructor(
    private readonly store: Store,
    private readonly webhooks: WebhookDispatcher,
    opts: { logger?: Logger } = {},
  ) {
    this.#logger = opts.logger ?? silentLogger();
    this.#initial = Promise.all([this.#readKeys(), this.#readUsers()]).then(
      ([keys, people]) => {
        this.#keys = keys;
        this.#users = people;
      },
      (err: unknown) =>
        this.#logger.warn(
          { err: describeError(err) },
          'cannot read keys and users for webhooks; changes made before the next one are not reported',
        ),
    );
    store.domain.changes.on('change', this.#onChange);
  }

  async #readKeys(): Promise<Map<string, KeyRow>> {
    const { apiKeys } = this.store.t;
    const rows = await this.store.db
      .select({ id: apiKeys.id, userId: apiKeys.userId, name: apiKeys.name, prefix: apiKeys.prefix, revokedAt: apiKeys.revokedAt })
      .from(apiKeys);
    return new Map(rows.map((r) => [r.id, r]));
  }

  async #readUsers(): Promise<Map<string, UserRow>> {
    const { users } = this.store.t;
    const rows = await this.store.db.select({ id: users.id, planId: users.planId, updatedAt: users.updatedAt }).from(users);
    return new Map(rows.map((r) => [r.id, r]));
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#scheduled ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#initial)
      .then(() => {
        this.#scheduled = null;
        return this.#diff();
      });
  }

  async #diff(): Promise<void> {
    if (this.#closed) return;
    let keys: Map<string, KeyRow>;
    let people: Map<string, UserRow>;
    try {
      [keys, people] = await Promise.all([this.#readKeys(), this.#readUsers()]);
    } catch (err) {
      this.#logger.warn({ err: describeError(err) }, 'cannot read keys and users for webhooks; will retry on the next change');
      return;
    }
    const keyData = (k: KeyRow) => ({ key_id: k.id, user_id: k.userId, name: k.name, prefix: k.prefix });
    for (const k of keys.values()) {
      const before = this.#keys.get(k.id);
      if (!before) this.webhooks.emitLater('key.created', keyData(k), { id: `key.created:${k.id}` });
      if (k.revokedAt && !before?.revokedAt) {
        this.webhooks.emitLater(
          'key.revoked',
          { ...keyData(k), revoked_at: k.revokedAt.toISOString() },
          { id: `key.revoked:${k.id}`, at: k.revokedAt },
        );
      }
    }
    for (const u of people.values()) {
      const before = this.#users.get(u.id);
      if (before && before.planId !== u.planId) {
        this.webhooks.emitLater(
          'plan.changed',
          { user_id: u.id, previous_plan_id: before.planId, plan_id: u.planId },
          { id: `plan.changed:${u.id}:${u.updatedAt.getTime()}`, at: u.updatedAt },
        );
      }
    }
    this.#keys = keys;
    this.#users = people;
  }

  /** Resolves when the last scheduled comparison has run (for tests). */
  settled(): Promise<void> {
    return this.#scheduled ?? this.#initial;
  }

  close(): void {
    this.#closed = true;
    this.store.domain.changes.off('change', this.#onChange);
  }
}
