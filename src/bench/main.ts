#!/usr/bin/env node
/**
 * Standalone entry of the bench harness: `node .build/src/bench/main.js <bench args>` does what
 * `apisix-node-runner bench <bench args>` does.
 */
import { benchMain } from './cli.js';

process.exitCode = await benchMain(process.argv.slice(2));
