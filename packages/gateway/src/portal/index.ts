export {
  checkPublicUrlValue,
  createPortalApi,
  CSRF_HEADER,
  MIN_PASSWORD_LENGTH,
  type PortalOptions,
  PUBLIC_URL_ENV,
  PUBLIC_URL_SETTING,
  RESET_PAGE_PATH,
  SESSION_COOKIE,
} from './api.js';
export { type AttemptRule, DEFAULT_PORTAL_LIMITS, type PortalLimits } from './limits.js';
export { directMailer, type PortalMailer } from './mail.js';
export { DEFAULT_SCRYPT, hashPassword, needsRehash, type ScryptParams, verifyPassword } from './password.js';
export { type IssuedToken, type PortalSession, PortalStore, type TokenCheck, type TokenPurpose } from './store.js';
