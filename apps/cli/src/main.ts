#!/usr/bin/env node
import { runCli } from './cli.program';
import { openEngine } from './engine-wiring';

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, openEngine, cliEntry: __filename }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
