#!/usr/bin/env node
import { run } from './cli.js';

process.exitCode = await run(process.argv);
// A provider that leaves a handle open must not keep a finished command alive.
setTimeout(() => process.exit(), 3000).unref();
