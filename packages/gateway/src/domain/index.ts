export { type AdminToken, AdminTokenRepository } from './admin-tokens.js';
export { CHANGE_ENTITIES, type ChangeEntity, type ChangeEvent, ChangeNotifier } from '../store/changes.js';
export { Domain } from './domain.js';
export { DomainError, type DomainErrorKind, isDomainError } from './errors.js';
export { API_KEY_PREFIX, ADMIN_TOKEN_PREFIX, sha256Hex } from './ids.js';
export { type ApiKey, ApiKeyRepository, type ApiKeyStatus, type CreateKeyInput, hashApiKey, type KeyAuthRecord, type KeyCheck, type KeyQuery, looksLikeApiKey } from './keys.js';
export { DEFAULT_LIMIT, MAX_LIMIT, type Page, type PageQuery } from './paging.js';
export { type CreatePlanInput, overageCents, type Plan, PlanRepository, type UpdatePlanInput } from './plans.js';
export { type CreateRouteInput, HTTP_METHODS, RESERVED_PREFIXES, type Route, RouteRepository, type UpdateRouteInput } from './routes.js';
export {
  type CreateSubscriptionInput,
  SUBSCRIPTION_STATUSES,
  type Subscription,
  SubscriptionRepository,
  type SyncSubscriptionInput,
  type UpdateSubscriptionInput,
} from './subscriptions.js';
export {
  assertMonth,
  type KeyUsage,
  type MinuteUsage,
  monthBounds,
  monthOf,
  type UsageCounts,
  type UsageEntry,
  UsageRepository,
  type UsageSummary,
  type UserUsage,
} from './usage.js';
export {
  type KeyTraffic,
  MAX_TRAFFIC_WINDOW_MS,
  type OverheadSummary,
  type RouteTraffic,
  summarizeOverhead,
  type TrafficMinute,
  type TrafficOverview,
  TrafficRepository,
} from './traffic.js';
export { type CreateUserInput, type UpdateUserInput, type User, type UserQuery, UserRepository, USER_STATUSES, type UserStatus } from './users.js';
export { parseInput, snakeCase } from './validate.js';
export {
  type CreateWebhookEndpointInput,
  type DeliveryStatus,
  eventMatches,
  type UpdateWebhookEndpointInput,
  WEBHOOK_EVENT_TYPES,
  type WebhookDelivery,
  type WebhookEndpoint,
  WebhookRepository,
} from './webhook-endpoints.js';
export { fromWire, toWire } from './wire.js';
