import { Command } from 'commander';
import { resolve } from 'node:path';
import {
  copyLog,
  eventsOfLog,
  postgresCustomerKeyTable,
  PostgresEventStore,
  readSqliteLogRaw,
  sqliteCustomerKeyTable,
  SqliteEventStore,
  assertTargetContinuesSource,
  verifyChain,
  type CopyLogProgress,
  type CustomerKeyTable,
  type EventStore,
  type ImportTarget,
  type KeyMergeResult,
  type StoredEvent,
} from '@clientele/event-store';
import { positiveInteger } from '../option-parsers';
import { createProgress, silentProgress } from '../progress';
import { assertSqliteFileHolds, postgresSchemaHasLog } from '../store-checks';
import { parseStoreAddress, type StoreAddress } from './audit.commands';

type Out = NodeJS.WritableStream & { isTTY?: boolean };

export interface MigrateCommandDeps {
  stdout: Out;
  stderr: Out;
  /** 0 copied and verified; 1 refused, failed, or the target does not match the source */
  setExitCode(code: number): void;
  /** how often progress prints a line when stderr is not a terminal; default 5 s */
  progressIntervalMs?: number;
}

export interface MigrateOptions {
  from: string;
  to: string;
  batch: number;
  quiet?: boolean;
}

/** Customer keys merged per transaction. */
const KEY_BATCH = 5000;

interface Side {
  address: StoreAddress;
  store: EventStore & ImportTarget;
  keys: CustomerKeyTable;
  close(): Promise<void>;
}

function describe(address: StoreAddress): string {
  return address.kind === 'sqlite' ? `sqlite:${address.file}` : `postgres:${address.url.replace(/\/\/[^@/]*@/, '//…@')}#${address.schema}`;
}

/**
 * The source must exist (a typo must not read as an empty log); the target is created when missing.
 * A store that cannot be opened (a refused connection, no such database, a file that is not one, a
 * schema name PostgreSQL cannot take) is named by its option and address.
 */
async function open(address: StoreAddress, role: 'source' | 'target'): Promise<Side> {
  const option = role === 'source' ? '--from' : '--to';
  try {
    return await openSide(address, role);
  } catch (error) {
    // not `instanceof Error`: a driver's error may come from another realm (a test runner's)
    const given = (error as { message?: unknown } | undefined)?.message;
    const message = typeof given === 'string' && given !== '' ? given : String(error);
    if (message.startsWith(`${option}:`)) throw error;
    throw new Error(`${option}: ${describe(address)}: ${message.replace(/^schema: /, 'schema ')}`, { cause: error });
  }
}

async function openSide(address: StoreAddress, role: 'source' | 'target'): Promise<Side> {
  const isSource = role === 'source';
  if (address.kind === 'sqlite') {
    if (isSource) assertSqliteFileHolds(address.file, 'events', '--from');
    const store = new SqliteEventStore({ file: address.file });
    const keys = sqliteCustomerKeyTable(address.file, { create: !isSource });
    return { address, store, keys, close: async () => void (await Promise.all([keys.close(), store.close()])) };
  }
  if (isSource && !(await postgresSchemaHasLog(address.url, address.schema))) throw new Error(`--from: schema ${address.schema} holds no event log`);
  const store = await PostgresEventStore.open({ connectionString: address.url, schema: address.schema, poolSize: 2 });
  try {
    const keys = await postgresCustomerKeyTable(address.url, address.schema, { create: !isSource });
    return { address, store, keys, close: async () => void (await Promise.all([keys.close(), store.close()])) };
  } catch (error) {
    await store.close();
    throw error;
  }
}

/**
 * The target's log as verification reads it: the stored text of each payload, which must be the
 * canonical JSON that was hashed (the embedded file read raw, PostgreSQL's `json` text as kept).
 */
function targetAsStored(target: Side, batchSize: number): AsyncIterable<StoredEvent> {
  if (target.address.kind === 'sqlite') return readSqliteLogRaw(target.address.file, { batchSize });
  const store = target.store as PostgresEventStore;
  return eventsOfLog({ readAll: (o) => store.readAllAsStored(o) }, { batchSize });
}

function sameStore(a: StoreAddress, b: StoreAddress): boolean {
  if (a.kind === 'sqlite' && b.kind === 'sqlite') return resolve(a.file) === resolve(b.file);
  if (a.kind === 'postgres' && b.kind === 'postgres') return a.url === b.url && a.schema === b.schema;
  return false;
}

async function copyKeys(from: CustomerKeyTable, to: CustomerKeyTable): Promise<KeyMergeResult> {
  const rows = await from.readRows();
  const total: KeyMergeResult = { added: 0, addedErased: 0, erased: 0, unchanged: 0 };
  for (let i = 0; i < rows.length; i += KEY_BATCH) {
    const result = await to.mergeRows(rows.slice(i, i + KEY_BATCH));
    total.added += result.added;
    total.addedErased += result.addedErased;
    total.erased += result.erased;
    total.unchanged += result.unchanged;
  }
  return total;
}

/**
 * Copies a whole log and its customer keys from one store to another, resuming after the target's
 * head, then verifies the target's chain. Answers the exit code.
 */
export async function migrateStore(options: MigrateOptions, deps: MigrateCommandDeps): Promise<number> {
  const fromAddress = parseStoreAddress(options.from, '--from');
  const toAddress = parseStoreAddress(options.to, '--to');
  if (sameStore(fromAddress, toAddress)) throw new Error('--from and --to name the same store');
  const out = deps.stdout;
  const source = await open(fromAddress, 'source');
  let target: Side | undefined;
  try {
    // checked before the target is opened, which would create it
    if ((await source.store.headPosition()) === 0) throw new Error(`--from: ${describe(fromAddress)} holds no events`);
    target = await open(toAddress, 'target');

    // Refuse before anything is written, keys included, when the target holds another log.
    await assertTargetContinuesSource(source.store, target.store);
    // Keys before events: every event on the target is readable the moment it lands there.
    const keys = await copyKeys(source.keys, target.keys);

    const progress = options.quiet
      ? silentProgress
      : createProgress({ total: 0, stream: deps.stderr, intervalMs: deps.progressIntervalMs, label: 'migrate', unit: 'events' });
    let last: CopyLogProgress = { copied: 0, total: 0, position: 0 };
    const copy = await copyLog(source.store, target.store, {
      batchSize: options.batch,
      onProgress: (p) => {
        last = p;
        progress.update({ done: p.copied, total: p.total });
      },
    });
    progress.stop({ done: last.copied, total: last.total });

    const report = await verifyChain(targetAsStored(target, options.batch));
    const [sourceAtHead] = await source.store.readAll({ afterPosition: report.lastPosition - 1, maxCount: 1 });
    const sourceHeadNow = await source.store.headPosition();
    const matches = report.ok && sourceAtHead?.hash === report.lastHash;

    out.write(
      `migrate ${describe(fromAddress)} → ${describe(toAddress)}\n` +
        `  events copied: ${copy.copied}${copy.resumedAfter > 0 ? ` (resumed after position ${copy.resumedAfter})` : ''}\n` +
        `  customer keys: ${keys.added} copied (${keys.addedErased} of them erased on the source, copied erased), ${keys.erased} erased as on the source, ${keys.unchanged} already there\n` +
        `  target head: ${report.lastPosition}\n` +
        `  last hash: ${report.lastHash}\n` +
        `  verification: ${report.ok ? `intact, ${report.eventsChecked} events checked` : `BROKEN at position ${report.firstBreak!.position}: ${report.firstBreak!.kind} — ${report.firstBreak!.detail}`}\n`,
    );
    if (report.ok && !matches) out.write(`  MISMATCH: the source's event at position ${report.lastPosition} has another hash\n`);
    if (matches && sourceHeadNow > report.lastPosition) {
      out.write(`  the source grew to ${sourceHeadNow} events during the copy: run migrate again to copy the rest\n`);
      return 1;
    }
    return matches ? 0 : 1;
  } finally {
    await target?.close();
    await source.close();
  }
}

export function registerMigrateCommand(program: Command, deps: MigrateCommandDeps): void {
  program
    .command('migrate')
    .description(
      'copy the whole log (ids, positions, record times, hashes as they are) and the customer keys from one store to another, ' +
        'continuing where an interrupted run stopped, then verify the target (stop the engines writing to the source first)',
    )
    .requiredOption('--from <address>', 'the store to copy: sqlite:<file> or postgres:<url>[#schema]')
    .requiredOption('--to <address>', 'the store to fill: sqlite:<file> or postgres:<url>[#schema] (created when missing)')
    .option('--batch <n>', 'events per read and per write transaction', positiveInteger('--batch'), 5000)
    .option('--quiet', 'no progress')
    .action(async (options: MigrateOptions) => {
      try {
        deps.setExitCode(await migrateStore(options, deps));
      } catch (error) {
        deps.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
        deps.setExitCode(1);
      }
    });
}
