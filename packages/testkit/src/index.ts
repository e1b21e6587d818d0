export * from './cache.js';
export * from './email.js';
export * from './harness.js';
export * from './manifest.js';
export * from './notification.js';
export * from './payment.js';
export * from './queue.js';
export * from './storage.js';
