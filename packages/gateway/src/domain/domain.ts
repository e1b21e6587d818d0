import type { SecretKey } from '../store/crypto.js';
import type { StoreDb } from '../store/dialect.js';
import { AdminTokenRepository } from './admin-tokens.js';
import { ChangeNotifier } from '../store/changes.js';
import type { DomainContext } from './context.js';
import { ApiKeyRepository } from './keys.js';
import { PlanRepository } from './plans.js';
import { RouteRepository } from './routes.js';
import { SubscriptionRepository } from './subscriptions.js';
import { TrafficRepository } from './traffic.js';
import { UsageRepository } from './usage.js';
import { UserRepository } from './users.js';
import { WebhookRepository } from './webhook-endpoints.js';

/** The gateway's business data: one repository per area, sharing one change notifier. */
export class Domain {
  readonly changes: ChangeNotifier;
  readonly users: UserRepository;
  readonly plans: PlanRepository;
  readonly keys: ApiKeyRepository;
  readonly routes: RouteRepository;
  readonly usage: UsageRepository;
  readonly traffic: TrafficRepository;
  readonly subscriptions: SubscriptionRepository;
  readonly webhooks: WebhookRepository;
  readonly adminTokens: AdminTokenRepository;

  constructor(opts: { store: StoreDb; secretKey: SecretKey; now?: () => Date }) {
    this.changes = new ChangeNotifier(opts.store);
    const { dialect, db, t, tx } = opts.store;
    const ctx: DomainContext = {
      dialect,
      db,
      t,
      tx,
      changes: this.changes,
      secretKey: opts.secretKey,
      now: opts.now ?? (() => new Date()),
    };
    this.users = new UserRepository(ctx);
    this.plans = new PlanRepository(ctx);
    this.keys = new ApiKeyRepository(ctx);
    this.routes = new RouteRepository(ctx);
    this.usage = new UsageRepository(ctx);
    this.traffic = new TrafficRepository(ctx);
    this.subscriptions = new SubscriptionRepository(ctx);
    this.webhooks = new WebhookRepository(ctx);
    this.adminTokens = new AdminTokenRepository(ctx);
  }
}
