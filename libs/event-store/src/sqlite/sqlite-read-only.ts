import Database from 'better-sqlite3';
import { existsSync, readFileSync, statSync, type BigIntStats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * An embedded store file opened for reading only, by a command that must leave evidence as it
 * found it (verify, export, as-of, personal-data export).
 *
 * SQLite reads a file in WAL mode through a shared-memory index (`<file>-shm`) beside the write-ahead
 * log (`<file>-wal`), and even a read-only connection creates both when they are missing: in a
 * folder it may not write to, opening fails ("attempt to write a readonly database"), and in one it
 * may, the two files are left behind. So:
 * - when no write-ahead log with content and no shared-memory index lie beside the file (a store
 *   closed cleanly, or copied without them), every committed event is in the file itself, and it is
 *   opened `immutable`: nothing is created, locked or written. The file's size, times and inode are
 *   noted, and every read checks them (`assertUnchanged`): an engine that opened the store and
 *   wrote to it meanwhile would make pages read without locks disagree, so such a read fails instead;
 * - otherwise (an engine is running, or stopped without folding its log into the file) committed
 *   events may sit in the write-ahead log, which immutable mode would ignore: the file is read
 *   through the log as any reader does. When that needs write access the folder does not give, and
 *   the log holds something, the command stops with `StoreNeedsWriteAccessError`, saying so; an empty
 *   log holds no event, and the file is then opened immutable after all.
 *
 * Immutable mode needs SQLite to read `file:` URIs, which better-sqlite3 turns on only when the
 * environment holds SQLITE_USE_URI=1 before its first connection in the process (the CLI and the
 * test setup set it). Without that, the file is read into memory and opened there: as faithful,
 * but it holds the whole file in memory.
 */
export interface ReadOnlySqlite {
  readonly db: Database.Database;
  /** `immutable` (the file alone), `memory` (the file alone, read into memory), `wal` (through its write-ahead log) */
  readonly mode: 'immutable' | 'memory' | 'wal';
  /** throws StoreChangedWhileReadError when the file alone was read and has been written since it was opened */
  assertUnchanged(): void;
  close(): void;
}

/** The store's committed events may sit in a write-ahead log that SQLite cannot read without write access to the folder. */
export class StoreNeedsWriteAccessError extends Error {
  constructor(
    readonly file: string,
    readonly walBytes: number,
    cause: unknown,
  ) {
    const name = basename(file);
    super(
      `${file}-wal holds ${walBytes} bytes of write-ahead log: events committed there may not be in ${name} yet, ` +
        `and SQLite reads that log only with write access to ${dirname(resolve(file))} (for its index, ${name}-shm), ` +
        `which this process does not have (${(cause as Error).message}). Nothing was written. ` +
        `Copy the folder (${name} together with ${name}-wal) somewhere writable and run the command on the copy`,
    );
    this.name = 'StoreNeedsWriteAccessError';
  }
}

/** The file read without locks was written by another process meanwhile: what was read may mix two states. */
export class StoreChangedWhileReadError extends Error {
  constructor(readonly file: string) {
    super(
      `${file} was written while it was being read (a process opened the store and wrote to it): what was read cannot be trusted. ` +
        'Run the command again with the engine stopped, or on a copy of the folder',
    );
    this.name = 'StoreChangedWhileReadError';
  }
}

/** Opens `file` (it must exist) for reading without writing anything to it or to its folder; see ReadOnlySqlite. */
export function openSqliteReadOnly(file: string): ReadOnlySqlite {
  if (!existsSync(file)) throw new Error(`${file} does not exist`);
  const walBytes = sizeOf(`${file}-wal`);
  if (walBytes === 0 && !existsSync(`${file}-shm`)) return openFileAlone(file);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    // the log and its index are opened at the first read, not by the constructor
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    const opened = db;
    return { db: opened, mode: 'wal', assertUnchanged: () => undefined, close: () => opened.close() };
  } catch (error) {
    db?.close();
    if (!needsWriteAccess(error)) throw error;
    if (walBytes > 0) throw new StoreNeedsWriteAccessError(file, walBytes, error);
    // an empty log and a stale index: every committed event is in the file
    return openFileAlone(file);
  }
}

function openFileAlone(file: string): ReadOnlySqlite {
  const before = statSync(file, { bigint: true });
  let db: Database.Database;
  let mode: ReadOnlySqlite['mode'] = 'immutable';
  try {
    db = new Database(`${pathToFileURL(resolve(file)).href}?immutable=1`, { readonly: true, fileMustExist: true });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'SQLITE_CANTOPEN') throw error;
    // URI filenames are off in this process (see ReadOnlySqlite): the name was taken as a path
    db = new Database(asRollbackJournal(readFileSync(file)), { readonly: true });
    mode = 'memory';
  }
  return {
    db,
    mode,
    assertUnchanged() {
      if (changed(before, statSync(file, { bigint: true, throwIfNoEntry: false }))) throw new StoreChangedWhileReadError(file);
    },
    close: () => db.close(),
  };
}

/**
 * The header of a WAL-mode file says so (bytes 18 and 19 are 2), and SQLite then refuses to open
 * it in memory, where no log can be; the copy in memory is marked as a rollback-journal file (1), which
 * changes nothing of what is read.
 */
function asRollbackJournal(bytes: Buffer): Buffer {
  if (bytes.length >= 20 && bytes[18] === 2 && bytes[19] === 2) {
    bytes[18] = 1;
    bytes[19] = 1;
  }
  return bytes;
}

function changed(before: BigIntStats, now: BigIntStats | undefined): boolean {
  return now === undefined || now.ino !== before.ino || now.size !== before.size || now.mtimeNs !== before.mtimeNs || now.ctimeNs !== before.ctimeNs;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** SQLite's answers when a read needs to create or write the log or its index and may not. */
function needsWriteAccess(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH');
}
