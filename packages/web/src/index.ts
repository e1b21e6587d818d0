export { ADMIN_NAV, ADMIN_SESSION_COOKIE, DASHBOARD_TOKEN_NAME } from './admin/session.js';
export { ASSET_PATH } from './assets.js';
export type { SettingKeyInfo, WebOptions } from './context.js';
export { CSRF_FIELD, PRE_SESSION_COOKIE } from './csrf.js';
export { mountWebPages } from './mount.js';
export { PORTAL_NAV } from './portal/shell.js';
export { DUMMY_CHECKOUT_PATH } from './portal/dummy-checkout.js';
