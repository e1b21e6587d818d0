export { buildProgram, errorLines, run } from './cli.js';
export { APP_DIR, openRuntime, startKernel } from './runtime.js';
