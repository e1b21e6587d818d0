export * from './cache.js';
export * from './common.js';
export * from './email.js';
export * from './notification.js';
export * from './oauth.js';
export * from './payment.js';
export * from './queue.js';
export * from './storage.js';
export * from './tls.js';

import type { CacheFeatures, CacheProvider } from './cache.js';
import type { EmailFeatures, EmailProvider } from './email.js';
import type { NotificationProvider } from './notification.js';
import type { OAuthProvider } from './oauth.js';
import type { PaymentFeatures, PaymentProvider } from './payment.js';
import type { QueueFeatures, QueueProvider } from './queue.js';
import type { StorageFeatures, StorageProvider } from './storage.js';
import type { TlsProvider } from './tls.js';

/** Maps each capability to the instance type its providers create. */
export interface CapabilityMap {
  payment: PaymentProvider;
  email: EmailProvider;
  cache: CacheProvider;
  storage: StorageProvider;
  queue: QueueProvider;
  notification: NotificationProvider;
  oauth: OAuthProvider;
  tls: TlsProvider;
}

/** Maps each capability to the feature flags its providers may declare (read by the testkit). */
export interface FeatureMap {
  payment: PaymentFeatures;
  email: EmailFeatures;
  cache: CacheFeatures;
  storage: StorageFeatures;
  queue: QueueFeatures;
  notification: Record<string, never>;
  oauth: Record<string, never>;
  tls: Record<string, never>;
}
