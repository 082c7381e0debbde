import { Command, CommanderError, Option } from 'commander';

import { runBench, type BenchOptions } from './bench/bench.command';
import { UsageError, type CliContext } from './cli-context';
import { registerAuditCommands } from './commands/audit.commands';
import { registerMigrateCommand } from './commands/migrate.command';
import { generateFile } from './generator/generate.command';
import { printHistory } from './history.command';
import { importFile, type ImportOptions } from './import/import.command';
import { calendarDate, factDay, fileToWrite, idPrefix, positiveInteger, share } from './option-parsers';


const DATA_DIR_HELP = 'directory of the embedded SQLite store';
const DEFAULT_DATA_DIR = process.env.CLIENTELE_DATA_DIR ?? './data';

/**
 * Runs one CLI invocation and answers its exit code: 0 success, 1 usage or runtime error,
 * 2 import finished with rejected lines.
 */
export const runCli = async (argv: readonly string[], context: CliContext): Promise<number> => {
  let exitCode = 0;
  const program = new Command('clientele')
    .description('Clientele operator CLI: import, history, synthetic data, audit, export, migrate, benchmarks')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => context.stdout.write(text),
      writeErr: (text) => context.stderr.write(text),
    });

  program
    .command('import')
    .description('import commands from a file: NDJSON command envelopes or CDNOW purchase histories')
    .argument('<file>', 'file to import')
    .addOption(new Option('--format <format>', 'input format; auto tells them apart by the first line').choices(['auto', 'ndjson', 'cdnow']).default('auto'))
    .option('--batch <n>', 'commands per batch', positiveInteger('--batch'), 1000)
    .option('--data-dir <dir>', DATA_DIR_HELP, DEFAULT_DATA_DIR)
    .option('--rejects <file>', 'write every rejected line as NDJSON to this file', fileToWrite('--rejects'))
    .addOption(new Option('--same-day <policy>', 'CDNOW: rows of one customer on one day form one order (merge) or one order each (separate)').choices(['merge', 'separate']).default('merge'))
    .option('--quiet', 'no progress output')
    .action(async (file: string, options: ImportOptions) => {
      exitCode = await importFile(file, options, context);
    });

  program
    .command('history')
    .description("print a customer's events: position, revision, type, occurredAt, recordedAt, causation")
    .argument('<customerId>', 'customer id')
    .option('--json', 'one JSON object per event (NDJSON)')
    .option('--data-dir <dir>', DATA_DIR_HELP, DEFAULT_DATA_DIR)
    .action(async (customerId: string, options: { json?: boolean; dataDir: string }) => {
      exitCode = await printHistory(customerId, options, context);
    });

  program
    .command('generate')
    .description('write a seeded, realistic workload of command envelopes as NDJSON')
    .requiredOption('--customers <n>', 'number of customers', positiveInteger('--customers'))
    .option('--seed <seed>', 'seed: the same seed gives the same output byte for byte', '1')
    .option('--out <file>', 'output file (default: stdout)', fileToWrite('--out'))
    .option('--from <date>', 'first business day', calendarDate('--from'), '2024-01-01')
    .option('--to <date>', 'last business day (no later than tomorrow: facts are not dated in the future)', factDay('--to'), '2025-12-31')
    .option('--id-prefix <prefix>', 'prefix of generated ids, so several workloads can share a store', idPrefix('--id-prefix'), 'syn')
    .option('--referral-share <share>', 'share of registrations referred by an earlier customer (0..1)', share('--referral-share'), 0.15)
    .action(async (options: { customers: number; seed: string; out?: string; from: string; to: string; idPrefix: string; referralShare: number }) => {
      exitCode = await generateFile(options, context);
    });

  program
    .command('sweep-churn')
    .description('churn every customer without a purchase for the policy period before the given date')
    .requiredOption('--as-of <date>', 'business date of the sweep', factDay('--as-of'))
    .option('--data-dir <dir>', DATA_DIR_HELP, DEFAULT_DATA_DIR)
    .action(async (options: { asOf: string; dataDir: string }) => {
      const engine = await context.openEngine(options.dataDir, { existing: true });
      try {
        if (engine.sweepChurn === undefined) throw new UsageError('sweep-churn: this build of the application has no churn sweep');
        const result = await engine.sweepChurn(`${options.asOf}T00:00:00.000Z`);
        context.stdout.write(
          `sweep as of ${options.asOf}: ${result.examined} customers examined, ${result.churned} churned, ${result.refused} refused, ${result.conflicts} not judged\n`,
        );
        if (result.conflicts > 0) {
          // a scheduler should notice: the same sweep run again judges them and churns nobody twice
          context.stderr.write(`sweep-churn: ${result.conflicts} customers were not judged (their streams kept changing); run the same sweep again\n`);
          exitCode = 1;
        }
      } finally {
        await engine.close();
      }
    });

  program
    .command('bench')
    .description('measure the command path, batched imports and the store on this machine (fixed seed) and print a table')
    .option('--quick', 'small sizes: a smoke test, not figures to quote')
    .option('--json', 'print the report as JSON')
    .option('--seed <seed>', 'seed of the synthetic workload', 'bench')
    .option('--dir <dir>', 'where the temporary databases go (default: the OS temp dir)')
    .option('--pg <url>', 'PostgreSQL connection string: runs the sections that need PostgreSQL')
    .option('--kafka <broker>', 'Kafka broker (host:port): runs the sections that need Kafka')
    .option('--section <name...>', 'run only these sections (quote names with spaces, e.g. --section "sqlite appends" statistics)')
    .option('--in-process', 'run every section in this process (default: each in a fresh process of its own)')
    .option('--case <index>', 'with one --section that has cases (rebuild memory), run only that case, from 0')
    .action(async (options: BenchOptions) => {
      exitCode = await runBench(options, context);
    });

  registerAuditCommands(program, {
    stdout: context.stdout,
    stderr: context.stderr,
    setExitCode: (code) => {
      exitCode = code;
    },
  });

  registerMigrateCommand(program, {
    stdout: context.stdout,
    stderr: context.stderr,
    setExitCode: (code) => {
      exitCode = code;
    },
  });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    // a refused option exits 1, or the command's own "could not run" code (audit verify and replay: 2)
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : error.exitCode === 2 ? 2 : 1;
    if (error instanceof UsageError || error instanceof Error) {
      context.stderr.write(`error: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
};
