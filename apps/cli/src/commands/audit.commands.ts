import { sqliteFileFromEnv, withoutPassword } from '@clientele/application';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { once } from 'node:events';
import { createWriteStream, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { customerStream, lifecyclePolicy, type LifecyclePolicy } from '@clientele/domain';
import {
  eventStoreConfigFromEnv,
  eventsOfLog,
  eventsOfStream,
  ExportFormatError,
  exportNdjson,
  parseMasterKey,
  PersonalDataEventStore,
  PostgresCustomerKeyStore,
  postgresCustomerKeyRows,
  sqliteCustomerKeyRows,
  keyCoverageWatch,
  PostgresEventStore,
  readCustomerAsOf,
  readNdjsonExport,
  openSqliteLogRaw,
  readSqliteLogRaw,
  readSqliteStreamRaw,
  SqliteCustomerKeyStore,
  SqliteEventStore,
  verifyChain,
  verifyStreamEvents,
  anchorsWatch,
  parseChainAnchor,
  type ChainAnchor,
  type ChainReport,
  type StoredEvent,
  type CustomerAsOf,
  type CustomerKeyStore,
  type CustomerKeyRows,
  type MissingCustomerKey,
  type EventStore,
  type ExportProgress,
  type ExportScope,
  type NdjsonSink,
} from '@clientele/event-store';
import { LogEndsBeforeReadModelsError, profileAsOf, readModelConfigFromEnv, ReadModelsOfAnotherLogError, type LogAnchor } from '@clientele/projections';
import { asOfDate, fileToRead, fileToWrite, positiveInteger } from '../option-parsers';
import { createProgress } from '../progress';
import {
  configuredReadModels,
  parseReadModelsLocation,
  readModelsAnchorLine,
  readModelsAnchorWatch,
  readReadModelsAnchor,
  type ReadModelsAnchor,
  type ReadModelsAnchorReport,
} from '../read-models-anchor';
import { assertSqliteFileHolds, postgresSchemaHasLog } from '../store-checks';
import { auditReplay, operatorReplay } from './replay.commands';

/*
 * Auditor and data-protection commands: verify, export, personal-data export, as-of.
 * Wiring (apps/cli/src/main.ts or cli.program.ts):
 *   registerAuditCommands(program, { stdout, stderr, setExitCode: (code) => { exitCode = code; } });
 * Every command takes `--store sqlite:<file>` or `--store postgres:<url>[#schema]`.
 */

type Out = NodeJS.WritableStream & { isTTY?: boolean };

export interface AuditCommandDeps {
  stdout: Out;
  stderr: Out;
  /** verify: 0 intact, 1 broken, 2 could not verify; other commands: 0 done, 1 refused or failed */
  setExitCode(code: number): void;
  /**
   * default process.env. Without --store the store is the engine's: CLIENTELE_STORE (sqlite |
   * postgres), CLIENTELE_SQLITE_FILE, DATABASE_URL, CLIENTELE_PG_SCHEMA; and CLIENTELE_MASTER_KEY,
   * and CLIENTELE_KEYS_FILE (a keys file other than the store's own) for personal data.
   */
  env?: NodeJS.ProcessEnv;
  /** how often progress prints a line when stderr is not a terminal; default 5 s */
  progressIntervalMs?: number;
}

// ---- where the store is ----

export type StoreAddress = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string; schema: string };

export const DEFAULT_PG_SCHEMA = 'clientele';

/**
 * `sqlite:<file>`, `postgres:<url>[#schema]` (or a bare `postgres://…` URL); the schema defaults to
 * `clientele`. Errors name `option`, the command-line option the address came from.
 */
export function parseStoreAddress(text: string, option = '--store'): StoreAddress {
  if (text.startsWith('sqlite:')) {
    const file = text.slice('sqlite:'.length);
    if (file === '') throw new Error(`${option}: expected sqlite:<file>, the file is missing`);
    return { kind: 'sqlite', file };
  }
  const pg = /^postgres(?:ql)?:\/\//.test(text) ? text : text.startsWith('postgres:') ? text.slice('postgres:'.length) : undefined;
  if (pg !== undefined) {
    const hash = pg.indexOf('#');
    const url = hash < 0 ? pg : pg.slice(0, hash);
    const schema = hash < 0 ? DEFAULT_PG_SCHEMA : pg.slice(hash + 1);
    if (!/^postgres(?:ql)?:\/\//.test(url)) throw new Error(`${option}: expected postgres:postgres://user@host:port/db[#schema], got ${JSON.stringify(text)}`);
    return { kind: 'postgres', url, schema };
  }
  throw new Error(`${option}: expected sqlite:<file> or postgres:<url>[#schema], got ${JSON.stringify(text)}`);
}

export interface StoreOptions {
  /** an address (see parseStoreAddress); default: the engine's environment */
  store?: string;
  /** an SQLite file of customer keys to read instead of the store's own (it must exist); default CLIENTELE_KEYS_FILE, else the store's keys: its file (SQLite) or its schema (PostgreSQL) */
  keys?: string;
}

/** An opened store and, on demand, the same store seen through the personal-data decorator. */
export interface OpenedStore {
  address: StoreAddress;
  /** the events as stored: personal fields encrypted, so the chain verifies */
  store: EventStore;
  /** decrypting view; needs the master key the engine writes with */
  personalData(masterKey: Buffer): Promise<PersonalDataEventStore>;
  /** where the customer keys are read (a file, or a schema), for messages */
  keysWhere: string;
  /** the customer key rows, without the master key: which customers have one (see keyCoverageWatch) */
  keyRows(): Promise<CustomerKeyRows>;
  close(): Promise<void>;
}

export async function openStore(options: StoreOptions, env: NodeJS.ProcessEnv = process.env): Promise<OpenedStore> {
  const address = resolveStoreAddress(options.store, env);
  const storeLabel = options.store !== undefined ? '--store' : 'the store';
  // a keys file given on purpose must be one: opened anyway, SQLite would create it (or its table)
  // empty, and every customer would then read as erased
  const keysFile = options.keys ?? (env.CLIENTELE_KEYS_FILE || undefined);
  if (keysFile !== undefined) assertSqliteFileHolds(keysFile, 'customer_keys', options.keys !== undefined ? '--keys' : 'CLIENTELE_KEYS_FILE');
  let store: EventStore;
  let openKeys: (masterKey: Buffer) => Promise<CustomerKeyStore>;
  let keysWhere: string;
  let keyRows: () => Promise<CustomerKeyRows>;
  if (address.kind === 'sqlite') {
    // an audit never creates a store, or a table in some other file, where the operator mistyped a path
    assertSqliteFileHolds(address.file, 'events', storeLabel);
    // these commands only read: nothing is written to the file or its folder, which may be evidence
    // on read-only storage (see openSqliteReadOnly)
    store = new SqliteEventStore({ file: address.file, readOnly: true });
    // the engine keeps the keys in the store file, beside the events
    openKeys = async (masterKey) => new SqliteCustomerKeyStore(keysFile ?? address.file, masterKey, undefined, { readOnly: true });
    keysWhere = keysFile ?? address.file;
    keyRows = async () => sqliteCustomerKeyRows(keysFile ?? address.file);
  } else {
    // nor a schema: a mistyped one would be created and read as an empty log
    if (!(await postgresSchemaHasLog(address.url, address.schema))) {
      throw new Error(`${storeLabel}: schema ${address.schema} holds no event log (no such store; nothing was created)`);
    }
    // to read only: an auditor's role may hold SELECT alone, and verifying must change nothing
    store = await PostgresEventStore.open({ connectionString: address.url, schema: address.schema, poolSize: 2, readOnly: true });
    // the engine keeps the keys in the store's schema, written with each registration
    openKeys = async (masterKey) =>
      keysFile !== undefined
        ? new SqliteCustomerKeyStore(keysFile, masterKey, undefined, { readOnly: true })
        : PostgresCustomerKeyStore.open({ connectionString: address.url, schema: address.schema, masterKey, readOnly: true });
    keysWhere = keysFile ?? `schema ${address.schema}`;
    keyRows = async () => (keysFile !== undefined ? sqliteCustomerKeyRows(keysFile) : postgresCustomerKeyRows(address.url, address.schema));
  }
  let keys: Promise<CustomerKeyStore> | undefined;
  return {
    address,
    store,
    async personalData(masterKey) {
      keys ??= openKeys(masterKey).then(async (opened) => {
        try {
          await opened.checkMasterKey?.();
        } catch (error) {
          await opened.close();
          throw error;
        }
        return opened;
      });
      return new PersonalDataEventStore(store, await keys);
    },
    keysWhere,
    keyRows,
    async close() {
      await (await keys?.catch(() => undefined))?.close();
      await store.close();
    },
  };
}

/**
 * The whole log of a PostgreSQL store, as stored: `data` and `metadata` are judged by the text the
 * table holds, as on the embedded store (see readAllAsStored). The rows a walk from position 1
 * cannot judge (one put below position 1, a record time edited below the millisecond) are asked for
 * first; the walk then stops before the lowest of them, which is the break when everything before
 * it holds.
 */
async function verifyPostgresLog(
  store: PostgresEventStore,
  walk: (events: AsyncIterable<StoredEvent>) => AsyncIterable<StoredEvent>,
  onProgress: ((checked: number, position: number) => void) | undefined,
): Promise<ChainReport> {
  const log = postgresLogAsStored(store);
  const outside = await store.rowOutsideTheChain();
  if (!outside) return verifyChain(walk(eventsOfLog(log)), { onProgress });
  async function* before(position: number): AsyncGenerator<StoredEvent> {
    for await (const e of eventsOfLog(log)) {
      if (e.position >= position) return;
      yield e;
    }
  }
  const report = await verifyChain(walk(before(outside.position)), { onProgress });
  return report.ok ? { ...report, ok: false, firstBreak: outside } : report;
}

/** The log of a PostgreSQL store read as stored, for the walks of verification. */
function postgresLogAsStored(store: PostgresEventStore): Pick<EventStore, 'readAll'> {
  return { readAll: (options) => store.readAllAsStored(options) };
}

/** `--store` when given, else the store the engine is configured with (the same environment variables). */
export function resolveStoreAddress(store: string | undefined, env: NodeJS.ProcessEnv): StoreAddress {
  if (store !== undefined) return parseStoreAddress(store);
  const config = eventStoreConfigFromEnv(env);
  if (config.kind === 'sqlite') return { kind: 'sqlite', file: sqliteFileFromEnv(env) };
  if (config.kind === 'postgres') return { kind: 'postgres', url: config.url, schema: config.schema };
  // EventStoreDB orders $all itself and chains each stream apart; walking one global chain does not apply
  throw new Error('CLIENTELE_STORE=eventstoredb: these commands read an sqlite: or postgres: store; give --store');
}

function masterKeyFrom(env: NodeJS.ProcessEnv): Buffer {
  const raw = env.CLIENTELE_MASTER_KEY;
  if (raw) return parseMasterKey(raw);
  // the embedded default keeps its key beside the data; reading never creates one
  const file = join(resolve(env.CLIENTELE_DATA_DIR || './data'), 'master.key');
  if (existsSync(file)) return parseMasterKey(readFileSync(file, 'utf8').trim(), file);
  throw new Error(`CLIENTELE_MASTER_KEY is not set and ${file} does not exist: personal data can only be read with the master key the engine writes with`);
}

// ---- output files: never a half-written file under the final name ----

interface FileSink {
  sink: NdjsonSink;
  commit(): Promise<void>;
  abandon(): Promise<void>;
}

function fileSink(path: string): FileSink {
  const partial = `${path}.partial`;
  const stream = createWriteStream(partial);
  return {
    sink: stream,
    async commit() {
      stream.end();
      await once(stream, 'close');
      renameSync(partial, path);
    },
    async abandon() {
      // the file is created when the stream opens, which may come after a failure found early (an
      // unknown customer): it is removed once the stream has closed, so nothing is left behind
      const closed = once(stream, 'close');
      stream.destroy();
      await closed;
      rmSync(partial, { force: true });
    },
  };
}

async function exportTo(
  out: string | undefined,
  deps: AuditCommandDeps,
  write: (sink: NdjsonSink) => Promise<void>,
): Promise<void> {
  if (out === undefined) {
    await write(deps.stdout as unknown as NdjsonSink);
    return;
  }
  const file = fileSink(out);
  try {
    await write(file.sink);
    await file.commit();
  } catch (error) {
    await file.abandon();
    throw error;
  }
}

// ---- reports ----

/** for a stream id given without its kind: stream ids are customer-<id>, employee-<id> or campaign-<id> */
function streamIdHint(streamId: string): string {
  if (/^(customer|employee|campaign)-/.test(streamId)) return '';
  return ` (stream ids name their kind: for customer ${streamId}, give ${customerStream(streamId)}; employee-<id> and campaign-<id> likewise)`;
}

function printChainReport(report: ChainReport, what: string, out: Out): void {
  if (report.ok) {
    out.write(`${what}: intact — ${report.eventsChecked} events checked, last position ${report.lastPosition}, last hash ${report.lastHash}\n`);
    return;
  }
  const b = report.firstBreak!;
  out.write(
    `${what}: BROKEN at position ${b.position} — ${b.kind}\n` +
      (b.eventId ? `  event ${b.eventId} in stream ${b.streamId}\n` : '') +
      `  ${b.detail}\n` +
      `  ${report.eventsChecked} events verified before it (last good position ${report.lastPosition})\n`,
  );
}

/** How many customers with a missing key the text report names; `--json` lists up to MISSING_KEYS_LISTED_IN_JSON. */
const MISSING_KEYS_PRINTED = 20;
const MISSING_KEYS_LISTED_IN_JSON = 1000;

function printMissingKeys(missing: readonly MissingCustomerKey[], where: string, out: Out): void {
  if (missing.length === 0) {
    out.write(`customer keys in ${where}: none missing for the personal data the events checked hold encrypted\n`);
    return;
  }
  const lines = [
    `customer keys in ${where}: MISSING for ${missing.length} customer${missing.length === 1 ? '' : 's'} — key_missing`,
    '  their personal data is encrypted in the log, but there is no key row for them and no PersonalDataErased in their stream:',
    '  it was not erased, and it cannot be read (a personal-data export refuses them)',
  ];
  for (const m of missing.slice(0, MISSING_KEYS_PRINTED)) {
    lines.push(`  customer ${m.customerId} in stream ${m.streamId}: ${m.encryptedEvents} event${m.encryptedEvents === 1 ? '' : 's'}, the first at position ${m.position}, event ${m.eventId}`);
  }
  if (missing.length > MISSING_KEYS_PRINTED) lines.push(`  … and ${missing.length - MISSING_KEYS_PRINTED} more (--json lists up to ${MISSING_KEYS_LISTED_IN_JSON})`);
  out.write(`${lines.join('\n')}\n`);
}

function printAsOf(answer: CustomerAsOf, out: Out): void {
  const lines: string[] = [];
  lines.push(`customer ${answer.customerId} as of ${answer.asOf}: ${answer.stage ?? 'not registered yet'}`);
  if (answer.stage !== undefined) {
    lines.push(`  registered ${answer.registeredAt} (source ${answer.source}${answer.referredBy ? `, referred by ${answer.referredBy}` : ''})`);
    lines.push(
      `  orders ${answer.orders}` +
        (answer.lastPurchaseAt ? `, first purchase ${answer.firstPurchaseAt}, last purchase ${answer.lastPurchaseAt} (${answer.daysSinceLastPurchase} days before)` : '') +
        (answer.churnedAt ? `, churned ${answer.churnedAt}` : ''),
    );
    lines.push(`  stage history: ${answer.stageHistory.map((s) => `${s.stage} ${s.at}`).join(' → ')}`);
    lines.push(`  churn due (no purchase for ${answer.policy.churnAfterDays} days, not yet swept): ${answer.churnDue ? 'yes' : 'no'}`);
    if (answer.erased) lines.push('  personal data erased');
  }
  lines.push(`  policy: ${Object.entries(answer.policy).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`);
  lines.push(`  events used: ${answer.eventsUsed.length}; recorded with a later business time: ${answer.eventsLater}`);
  for (const e of answer.eventsUsed) {
    lines.push(`    ${String(e.position).padStart(8)}  r${String(e.revision).padEnd(4)} ${e.type.padEnd(22)} ${e.occurredAt}  ${e.id}`);
  }
  out.write(`${lines.join('\n')}\n`);
}

function parsePolicy(text: string): LifecyclePolicy {
  let overrides: unknown;
  try {
    overrides = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`--policy: expected a JSON object such as {"churnAfterDays":90}, got ${text}`);
  }
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) {
    throw new InvalidArgumentError(`--policy: expected a JSON object, got ${text}`);
  }
  try {
    return lifecyclePolicy(overrides as Partial<LifecyclePolicy>);
  } catch (error) {
    throw new InvalidArgumentError(`--policy: ${(error as Error).message}`);
  }
}

function anchorOption(value: string): ChainAnchor {
  try {
    return parseChainAnchor(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

// ---- the commands ----

export function registerAuditCommands(program: Command, deps: AuditCommandDeps): void {
  const env = deps.env ?? process.env;
  const storeHelp = "sqlite:<file> or postgres:<url>[#schema] (default: the engine's CLIENTELE_STORE configuration, ./data/clientele.db)";
  const intervalMs = deps.progressIntervalMs ?? 5000;

  /**
   * runs an action; a failure prints one line (no stack) and sets the failure exit code. With
   * `--json` the failure is also `{"error": …}` on stdout, so a script reading the JSON gets an
   * answer (no `ok`: nothing was judged) instead of nothing.
   */
  const guarded =
    <A extends unknown[]>(failureCode: number, action: (...args: A) => Promise<void>) =>
    async (...args: A): Promise<void> => {
      try {
        await action(...args);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        deps.stderr.write(`error: ${message}\n`);
        if (args.some((a) => typeof a === 'object' && a !== null && (a as { json?: unknown }).json === true)) {
          deps.stdout.write(`${JSON.stringify({ error: message })}\n`);
        }
        deps.setExitCode(failureCode);
      }
    };

  const audit = program.command('audit').description('auditor commands: check the stored history');

  /**
   * For commands whose exit 1 is a verdict (the log is broken, a read model differs), a refused
   * option exits with their "could not run" code instead: a script must not read a typo as tampering.
   */
  const usageExits = (code: number) => (error: CommanderError) => {
    throw new CommanderError(error.exitCode === 0 ? 0 : code, error.code, error.message);
  };

  audit
    .command('verify')
    .description('walk the hash chain and report the first altered, missing or reordered event (exit 0 intact, 1 broken, 2 could not verify)')
    .exitOverride(usageExits(2))
    .option('--stream <id>', 'verify one stream: its events, revisions and links to their neighbours in the log')
    .option('--from-export <file>', 'verify an NDJSON export instead of a store (a whole-log export; with --stream, a stream export)', fileToRead('--from-export'))
    .option('--store <address>', storeHelp)
    .option('--keys <file>', "an SQLite file of customer keys to check the log's personal data against (default: CLIENTELE_KEYS_FILE, else the keys the engine keeps in the store)")
    .option(
      '--expect <position:hash>',
      'a position and hash noted from an earlier run: also proves nothing up to there was re-chained and nothing was cut from the end (repeat it to check several; each is checked)',
      (value: string, previous: ChainAnchor[] = []) => [...previous, anchorOption(value)],
    )
    .option(
      '--read-models [where]',
      "also hold the log to the anchor the read models keep (the position and hash of the last event they folded), as --expect does: a data directory, a read-model directory or file, or postgres:<url>[#schema]; without a value, the engine's read models (CLIENTELE_DATA_DIR, CLIENTELE_READ_MODELS, CLIENTELE_READ_MODELS_PG_SCHEMA)",
    )
    .option('--json', 'print the report as JSON')
    .option('--quiet', 'no progress lines')
    .action(
      guarded(2, async (options: { stream?: string; fromExport?: string; store?: string; keys?: string; expect?: ChainAnchor[]; readModels?: string | true; json?: boolean; quiet?: boolean }) => {
        const anchors = options.expect ?? [];
        if (anchors.length > 0 && options.stream !== undefined) throw new Error('--expect applies to the whole log, not to --stream');
        if (options.readModels !== undefined && options.stream !== undefined) throw new Error('--read-models applies to the whole log, not to --stream');
        if (options.stream !== undefined && options.stream.trim() === '') throw new Error('--stream: expected a stream id, got an empty one');
        if (options.keys !== undefined && options.fromExport !== undefined) throw new Error('--keys applies to a store, not to --from-export (an export holds no keys)');
        const anchor = anchors.length > 0 ? anchorsWatch(anchors) : undefined;
        // read before the walk: a running engine moves the anchor forward, never past the head the walk will reach
        const readModels = options.readModels !== undefined ? readModelsAnchorWatch(await readModelsAnchorFor(options.readModels, env)) : undefined;
        // a store's walk is also watched for personal data whose key is missing (an export has no keys to look at)
        let keys: { rows: CustomerKeyRows; watch: ReturnType<typeof keyCoverageWatch> } | undefined;
        const watched = (events: AsyncIterable<StoredEvent>): AsyncIterable<StoredEvent> => (keys ? keys.watch.tap(events) : events);
        const walk = (events: AsyncIterable<StoredEvent>): AsyncIterable<StoredEvent> => {
          const noted = anchor ? anchor.tap(events) : events;
          return watched(readModels ? readModels.tap(noted) : noted);
        };
        const onProgress = options.quiet
          ? undefined
          : (checked: number, position: number) => deps.stderr.write(`verify: ${checked} events checked, at position ${position}\n`);
        let report: ChainReport;
        let what: string;
        let missingKeys: MissingCustomerKey[] | undefined;
        try {
          if (options.fromExport !== undefined) {
            const events = readNdjsonExport(options.fromExport);
            what = `export ${options.fromExport}${options.stream ? ` (stream ${options.stream})` : ''}`;
            report = options.stream
              ? await verifyStreamEvents(events, { streamId: options.stream, onProgress })
              : await verifyChain(walk(events), { onProgress });
            // a file with no event is no copy of a log (an empty store is exported as nothing, and proves nothing)
            if (!options.stream && report.ok && report.eventsChecked === 0) throw new Error(`--from-export: ${options.fromExport} holds no events`);
          } else {
            const address = resolveStoreAddress(options.store, env);
            const storeLabel = options.store !== undefined ? '--store' : 'the store';
            const keysFile = options.keys ?? (env.CLIENTELE_KEYS_FILE || undefined);
            if (keysFile !== undefined) assertSqliteFileHolds(keysFile, 'customer_keys', options.keys !== undefined ? '--keys' : 'CLIENTELE_KEYS_FILE');
            if (address.kind === 'sqlite') {
              // a missing file, a directory or another kind of file is refused by the option that named it
              assertSqliteFileHolds(address.file, 'events', storeLabel);
              const rows = sqliteCustomerKeyRows(keysFile ?? address.file);
              keys = { rows, watch: keyCoverageWatch(rows) };
              try {
                // raw rows: a damaged file is reported, where the adapter might refuse to read it
                if (options.stream === undefined) {
                  what = `log in ${address.file}`;
                  report = await verifyChain(walk(readSqliteLogRaw(address.file)), { onProgress });
                } else {
                  what = `stream ${options.stream}`;
                  report = await verifySqliteStreamRaw(address.file, options.stream, watched, onProgress);
                }
                missingKeys = await keys.watch.missing();
              } finally {
                await rows.close();
              }
            } else {
              const opened = await openStore({ ...(options.store !== undefined ? { store: options.store } : {}), ...(keysFile !== undefined ? { keys: keysFile } : {}) }, env);
              try {
                const store = opened.store as PostgresEventStore;
                const rows = await opened.keyRows();
                keys = { rows, watch: keyCoverageWatch(rows) };
                try {
                  // which server and schema, as the file is named for SQLite (a kept report says what it judged)
                  const where = address.kind === 'postgres' ? ` in PostgreSQL ${withoutPassword(address.url)} schema ${address.schema}` : '';
                  what = options.stream ? `stream ${options.stream}${where}` : `log${where}`;
                  report = options.stream
                    ? await verifyStreamEvents(watched(eventsOfStream({ readStream: (id, o) => store.readStreamAsStored(id, o) }, options.stream)), {
                        streamId: options.stream,
                        log: postgresLogAsStored(store),
                        onProgress,
                      })
                    : await verifyPostgresLog(store, walk, onProgress);
                  missingKeys = await keys.watch.missing();
                } finally {
                  await rows.close();
                }
              } finally {
                await opened.close();
              }
            }
          }
        } catch (error) {
          if (!(error instanceof ExportFormatError)) throw error;
          // a line that is no longer an event is itself evidence of alteration
          deps.stdout.write(options.json ? `${JSON.stringify({ ok: false, damagedLine: error.line, detail: error.message })}\n` : `export damaged: ${error.message}\n`);
          deps.setExitCode(1);
          return;
        }
        const walked = report;
        if (anchor) report = anchor.judge(report);
        let readModelsAnchor: ReadModelsAnchorReport | undefined;
        if (readModels) ({ report, anchor: readModelsAnchor } = readModels.judge(walked, report));
        if (options.stream !== undefined && report.ok && report.eventsChecked === 0) {
          throw new Error(`stream ${options.stream} has no events${streamIdHint(options.stream)}`);
        }
        const hint = options.fromExport !== undefined && options.stream === undefined ? streamExportHint(report) : undefined;
        // the anchors checked, in the report too, so a kept JSON report shows what it proved
        const checkedAnchors = anchors.length > 0 ? { anchors: anchors.map((a) => ({ position: a.position, hash: a.hash })) } : {};
        const keysOk = missingKeys === undefined || missingKeys.length === 0;
        if (options.json) {
          const customerKeys = keys && missingKeys ? { where: keys.rows.where, missingCount: missingKeys.length, missing: missingKeys.slice(0, MISSING_KEYS_LISTED_IN_JSON) } : undefined;
          deps.stdout.write(
            `${JSON.stringify({ ...report, ok: report.ok && keysOk, ...checkedAnchors, ...(hint ? { hint } : {}), ...(readModelsAnchor ? { readModelsAnchor } : {}), ...(customerKeys ? { customerKeys } : {}) })}\n`,
          );
        } else {
          printChainReport(report, what, deps.stdout);
          if (hint) deps.stdout.write(`  ${hint}\n`);
        }
        if (report.ok && !options.json) {
          for (const a of anchors) deps.stdout.write(`  noted position ${a.position} still has hash ${a.hash}\n`);
        }
        const readModelsLine = readModelsAnchor && readModelsAnchorLine(readModelsAnchor);
        if (readModelsLine && !options.json) deps.stdout.write(`  ${readModelsLine}\n`);
        if (keys && missingKeys && !options.json) printMissingKeys(missingKeys, keys.rows.where, deps.stdout);
        deps.setExitCode(report.ok && keysOk ? 0 : 1);
      }),
    );

  program
    .command('export')
    .description('write the log (or one stream, or one customer) as NDJSON, as stored: personal fields stay encrypted and the chain verifies offline')
    .option('--stream <id>', 'only this stream')
    .option('--customer <id>', 'only this customer (the stream customer-<id>)')
    .option('--out <file>', 'write here (default: stdout); written under <file>.partial and renamed when complete', fileToWrite('--out'))
    .option('--store <address>', storeHelp)
    .option('--batch <n>', 'events read per page', positiveInteger('--batch'), 1000)
    .option('--quiet', 'no progress')
    .action(
      guarded(1, async (options: { stream?: string; customer?: string; out?: string; store?: string; batch: number; quiet?: boolean }) => {
        if (options.stream !== undefined && options.customer !== undefined) throw new Error('export: give --stream or --customer, not both');
        const streamId = options.customer !== undefined ? customerStream(options.customer) : options.stream;
        const scope: ExportScope = streamId === undefined ? { kind: 'all' } : { kind: 'stream', streamId };
        const opened = await openStore(options.store !== undefined ? { store: options.store } : {}, env);
        try {
          const progress = options.quiet ? undefined : createProgress({ total: 0, stream: deps.stderr, intervalMs, label: 'export', unit: 'events' });
          let last: ExportProgress = { exported: 0, total: 0, position: 0 };
          await exportTo(options.out, deps, async (sink) => {
            const summary = await exportNdjson(opened.store, sink, {
              scope,
              batchSize: options.batch,
              onProgress: (p) => {
                last = p;
                progress?.update({ done: p.exported, total: p.total });
              },
            });
            progress?.stop({ done: last.exported, total: last.total });
            if (scope.kind === 'stream' && summary.events === 0) throw new Error(`stream ${scope.streamId} has no events${options.stream !== undefined ? streamIdHint(scope.streamId) : ''}`);
            if (!options.quiet) {
              deps.stderr.write(
                `exported ${summary.events} events` +
                  (summary.events > 0 ? ` (positions ${summary.firstPosition}..${summary.lastPosition})` : '') +
                  `${options.out ? ` to ${options.out}` : ''}\n`,
              );
            }
          });
        } finally {
          await opened.close();
        }
      }),
    );

  const personal = program.command('personal-data').description("a person's own data (right of access)");
  personal
    .command('export')
    .description("write a customer's events as NDJSON with their personal fields decrypted (needs CLIENTELE_MASTER_KEY)")
    .argument('<customerId>', 'customer id')
    .option('--out <file>', 'write here (default: stdout)', fileToWrite('--out'))
    .option('--store <address>', storeHelp)
    .option('--keys <file>', "an SQLite file of customer keys to read instead of the store's own (default: CLIENTELE_KEYS_FILE, else the keys the engine keeps in the store: its file, or its PostgreSQL schema)")
    .action(
      guarded(1, async (customerId: string, options: { out?: string; store?: string; keys?: string }) => {
        const masterKey = masterKeyFrom(env);
        const opened = await openStore({ ...(options.store !== undefined ? { store: options.store } : {}), ...(options.keys !== undefined ? { keys: options.keys } : {}) }, env);
        try {
          const decrypted = await opened.personalData(masterKey);
          const streamId = customerStream(customerId);
          await assertPersonalDataReadable(decrypted, customerId, opened.keysWhere);
          await exportTo(options.out, deps, async (sink) => {
            const summary = await exportNdjson(decrypted, sink, { scope: { kind: 'stream', streamId } });
            if (summary.events === 0) throw new Error(`customer ${customerId}: no events`);
            const erased = await decrypted.isErased(customerId);
            deps.stderr.write(
              `customer ${customerId}: ${summary.events} events${erased ? '; personal data erased, so personal fields are absent' : ''}\n`,
            );
          });
        } finally {
          await opened.close();
        }
      }),
    );

  program
    .command('as-of')
    .description("a customer's stage and state as of a business date, with the events used and the policy in force")
    .argument('<customerId>', 'customer id')
    .requiredOption('--date <date>', 'ISO date (end of that day UTC) or date-time with a zone', asOfDate('--date'))
    .option('--policy <json>', 'policy overrides, e.g. {"churnAfterDays":90} (default: the default policy)', parsePolicy)
    .option('--store <address>', storeHelp)
    .option('--keys <file>', 'with --profile: SQLite file of customer keys (as for personal-data export)')
    .option('--profile', "also print the customer's profile as it stood then (needs CLIENTELE_MASTER_KEY for personal fields)")
    .option('--json', 'print the answer as JSON')
    .action(
      guarded(1, async (customerId: string, options: { date: string; policy?: LifecyclePolicy; store?: string; keys?: string; profile?: boolean; json?: boolean }) => {
        const opened = await openStore({ ...(options.store !== undefined ? { store: options.store } : {}), ...(options.keys !== undefined ? { keys: options.keys } : {}) }, env);
        try {
          const answer = await readCustomerAsOf(opened.store, customerId, options.date, options.policy);
          if (answer.eventsUsed.length === 0 && answer.eventsLater === 0) throw new Error(`customer ${customerId}: no events`);
          if (options.profile) {
            // the profile shows names and contacts, so it reads through the decrypting view as the projector does
            const events: StoredEvent[] = [];
            const decrypted = await opened.personalData(masterKeyFrom(env));
            await assertPersonalDataReadable(decrypted, customerId, opened.keysWhere);
            for await (const e of eventsOfStream(decrypted, customerStream(customerId))) events.push(e);
            const { profile } = await profileAsOf(customerId, events, answer.asOf);
            if (options.json) deps.stdout.write(`${JSON.stringify({ ...answer, profile: profile ?? null })}\n`);
            else {
              printAsOf(answer, deps.stdout);
              deps.stdout.write(`profile as of ${answer.asOf}:\n${JSON.stringify(profile ?? null, null, 2)}\n`);
            }
            return;
          }
          if (options.json) deps.stdout.write(`${JSON.stringify(answer)}\n`);
          else printAsOf(answer, deps.stdout);
        } finally {
          await opened.close();
        }
      }),
    );

  const replayHelp = 'events per read-model transaction (default CLIENTELE_PROJECTOR_REBUILD_BATCH_SIZE, 25000)';
  audit
    .command('replay')
    .description(
      'rebuild every read model from position 0 into a scratch store, up to the live checkpoints, and compare digests with the live read models (exit 0 all match, 1 a mismatch or a log cut or changed after they folded it, 2 could not run)',
    )
    .exitOverride(usageExits(2))
    .option('--batch <n>', replayHelp, positiveInteger('--batch'))
    .option('--json', 'print the comparison as JSON')
    .option('--quiet', 'no progress lines')
    .action(
      guarded(2, async (options: { batch?: number; json?: boolean; quiet?: boolean }) => {
        let ok: boolean;
        try {
          ok = await auditReplay({ env, stdout: deps.stdout, stderr: deps.stderr, ...options, ...(options.batch ? { batchSize: options.batch } : {}) });
        } catch (error) {
          // findings about the log, not failures to run: the read models cannot match a log that lost their events,
          // and a log that has another hash where they stopped is not the log they folded, whatever the digests say
          if (error instanceof LogEndsBeforeReadModelsError) {
            deps.stdout.write(options.json ? `${JSON.stringify({ ok: false, logHead: error.head, readModelsAhead: error.readModels, detail: error.message })}\n` : `LOG CUT: ${error.message}\n`);
          } else if (error instanceof ReadModelsOfAnotherLogError && error.mismatch.kind === 'other_hash') {
            const { anchor, hash } = error.mismatch;
            deps.stdout.write(options.json ? `${JSON.stringify({ ok: false, readModelsAnchor: anchor, logHash: hash, detail: error.message })}\n` : `LOG DIFFERS: ${error.message}\n`);
          } else throw error;
          ok = false;
        }
        deps.setExitCode(ok ? 0 : 1);
      }),
    );

  program
    .command('replay')
    .description("rebuild every read model from the whole log into a fresh generation (a running engine serves it within seconds) and print each digest")
    .option('--batch <n>', replayHelp, positiveInteger('--batch'))
    .option('--json', 'print the digests as JSON')
    .option('--quiet', 'no progress lines')
    .option(
      '--accept-other-log',
      'replace read models that do not match this log (folded from another log, or from this log before it was altered or cut): without it such a replay is refused, since it erases their witness; run audit verify --expect first',
    )
    .action(
      guarded(1, async (options: { batch?: number; json?: boolean; quiet?: boolean; acceptOtherLog?: boolean }) => {
        await operatorReplay({ env, stdout: deps.stdout, stderr: deps.stderr, ...options, ...(options.batch ? { batchSize: options.batch } : {}) });
      }),
    );
}

/**
 * The anchor of the read models `--read-models` names (`true`: the engine's, from its environment).
 * Read models that are not there, or that hold no anchor, leave nothing to hold the log to: refused
 * (exit 2), not reported as intact.
 */
async function readModelsAnchorFor(given: string | true, env: NodeJS.ProcessEnv): Promise<ReadModelsAnchor & { anchor: LogAnchor }> {
  const location = given === true ? configuredReadModels(readModelConfigFromEnv(env)) : parseReadModelsLocation(given, '--read-models');
  const found = await readReadModelsAnchor(location, '--read-models');
  const named = location.kind === 'sqlite' ? location.path : `PostgreSQL schema ${location.schema}`;
  if (!found) throw new Error(`--read-models: no read models at ${named}${given === true ? " (the engine's configuration)" : ''}`);
  if (!found.anchor) {
    throw new Error(`--read-models: the read models in ${found.where} hold no anchor (they folded nothing yet, or were written before read models recorded the last event they folded): nothing to hold the log to`);
  }
  return { where: found.where, anchor: found.anchor };
}

/**
 * A customer whose personal data the log holds encrypted but whose key is missing (no key row, no
 * erasure recorded) is refused: answered anyway, their fields would read as absent, as if erased,
 * and a right-of-access answer would claim an erasure that never happened.
 */
async function assertPersonalDataReadable(store: PersonalDataEventStore, customerId: string, keysWhere: string): Promise<void> {
  const state = await store.personalDataState(customerId);
  if (state.kind !== 'key_missing') return;
  throw new Error(
    `customer ${customerId}: ${state.encryptedEvents} of their events ${state.encryptedEvents === 1 ? 'holds' : 'hold'} personal data encrypted with a key that is missing ` +
      `(no customer_keys row for them in ${keysWhere}; first at position ${state.firstPosition}, event ${state.firstEventId}), ` +
      'and their stream records no PersonalDataErased: the data was not erased, it cannot be read. Nothing was written; ' +
      "restore the store's customer keys from a backup, or name the keys file that holds them with --keys",
  );
}

/**
 * One stream of an embedded store, read raw as the whole-log verify reads it: a payload rewritten
 * into other JSON text (a duplicated key, `1e3` for `1000`) or no longer JSON is reported as
 * altered at its position, where the adapter would parse it into the hashed values or refuse it.
 * The neighbour links are read raw too, so a damaged row of another stream beside it does not stop the check.
 */
async function verifySqliteStreamRaw(
  file: string,
  streamId: string,
  watched: (events: AsyncIterable<StoredEvent>) => AsyncIterable<StoredEvent>,
  onProgress: ((checked: number, position: number) => void) | undefined,
): Promise<ChainReport> {
  const log = openSqliteLogRaw(file);
  try {
    return await verifyStreamEvents(watched(readSqliteStreamRaw(file, streamId)), { streamId, log, onProgress });
  } finally {
    log.close();
  }
}

/**
 * A whole-log verification of an export that breaks at its very first event, above position 1, is
 * what the export of one stream looks like; it is also a whole-log export with its first lines
 * removed, so the verdict stands and the hint only says how to verify the other kind.
 */
function streamExportHint(report: ChainReport): string | undefined {
  const b = report.firstBreak;
  if (report.ok || !b || report.eventsChecked !== 0 || b.position <= 1) return undefined;
  return `if this file is the export of one stream, verify it with --stream <its stream id>${b.streamId ? ` (its first event is in stream ${b.streamId})` : ''}`;
}
