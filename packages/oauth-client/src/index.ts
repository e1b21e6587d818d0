export type { CustomFetch, CustomFetchOptions, IDToken, UserInfoResponse } from 'openid-client';
export * from './client.js';
export * from './errors.js';
export * from './fields.js';
export * from './http.js';
export * from './profile.js';
export * from './urls.js';
