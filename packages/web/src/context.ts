import type { Store, WebhookDispatcher } from '@apigate/gateway';
import type { Kernel, Logger } from '@apigate/kernel';
import type { Hono } from 'hono';
import type { AssetUrls } from './assets.js';

/** A setting the dashboard may set: how to check a value, whether it is secret. */
export interface SettingKeyInfo {
  validate(value: string): string | undefined;
  secret: boolean;
  envVar?: string | undefined;
}

export interface WebOptions {
  store: Store;
  logger: Logger;
  /** For provider health, the selected payment provider and the storage used by usage export; optional in tests of single pages. */
  kernel?: Kernel | undefined;
  /** The fixed admin token (APIGATE_ADMIN_TOKEN), checked like the admin API does; database tokens work too. */
  adminToken?: string | undefined;
  /** The running gateway's webhook dispatcher, for "retry" on a delivery; without it the button is hidden. */
  webhooks?: WebhookDispatcher | undefined;
  /**
   * Every setting key that may be set (the app's `apigate settings keys`), or a loader of them called
   * when the settings page first needs them (the app imports every installed provider to list them,
   * which a gateway that never shows the page should not pay for); without it the page is read only.
   */
  settingKeys?: ReadonlyMap<string, SettingKeyInfo> | (() => Promise<ReadonlyMap<string, SettingKeyInfo>>) | undefined;
  /** Lifetime of an admin dashboard session; default 12 hours. */
  adminSessionTtlMs?: number;
  now?: () => Date;
}

/** What every page handler gets. */
export interface WebContext extends WebOptions {
  /** The whole HTTP app, for calling its JSON APIs in-process. */
  app: Hono;
  assets: AssetUrls;
  now: () => Date;
}
