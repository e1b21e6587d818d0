export { addChallengeRoute, CacheChallengeStore, CHALLENGE_PATH, CHALLENGE_TTL_MS, startChallengeServer } from './challenges.js';
export { CertificateStore, domainsKey, sanNames, type StoredCertificate } from './certificates.js';
export {
  CertificateManager,
  type CertificateManagerOptions,
  parseTlsDomains,
  RENEW_BEFORE_MS,
  RENEW_CHECK_INTERVAL_MS,
} from './manager.js';
