#!/usr/bin/env node
import { runCli } from './cli.program';
import { openEngine, openReader } from './engine-wiring';

// The audit commands open evidence files with SQLite's `immutable=1` URI, so that reading writes
// nothing beside them (openSqliteReadOnly); better-sqlite3 reads URI filenames only when this is set
// before its first connection in the process.
process.env.SQLITE_USE_URI ??= '1';

// A reader that stops early (`clientele export | head -1`) closes the pipe: the rest of the output
// has nowhere to go, which is what the reader asked for, not a failure to report with a stack.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, openEngine, openReader, cliEntry: __filename }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
