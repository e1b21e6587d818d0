export * from './harness.js';
export * from './manifest.js';
