import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * What a rebuild costs this machine before any projection code runs: the rows a rebuild wrote,
 * written again by better-sqlite3 alone, and the log read and parsed alone. A rebuild cannot go
 * faster than the write figure on the thread that writes, whatever its folds cost, so a target is
 * judged against it (as the append figures are against the store's own baseline rows).
 */
export interface RebuildFloor {
  /** rows in the rebuilt file's tables */
  rows: number;
  /** the rows inserted into a fresh file, tables first, in 10,000-row transactions, no sync */
  insertSeconds: number;
  /** the non-unique indexes built afterwards, as the bulk load defers them */
  indexSeconds: number;
  /** the log read in pages of 1,000 events and each event's data and metadata parsed */
  readSeconds: number;
}

const ROWS_PER_TRANSACTION = 10_000;
const PAGE = 1_000;

/**
 * Copies every table of `rebuiltFile` into `scratchFile` (deleted first and after) with the
 * settings of a rebuild's bulk load (journal in memory, no sync), timing only the writes: each
 * table's rows are read into memory before its clock starts. Then times reading the event log of
 * `logFile` from position 0, every column of every event with its data and metadata parsed, as
 * the rebuild's read-ahead does.
 */
export function measureRebuildFloor(rebuiltFile: string, logFile: string, scratchFile: string): RebuildFloor {
  const source = new Database(rebuiltFile, { readonly: true });
  const scratch = openScratch(scratchFile);
  let rows = 0;
  let insertNs = 0n;
  let indexNs = 0n;
  try {
    const objects = source
      .prepare(`SELECT type, name, tbl_name AS tableName, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type DESC`)
      .all() as { type: 'table' | 'index'; name: string; tableName: string; sql: string }[];
    const tables = objects.filter((o) => o.type === 'table');
    const indexes = objects.filter((o) => o.type === 'index');
    for (const table of tables) {
      const tableRows = source.prepare(`SELECT * FROM "${table.name}"`).raw(true).all() as unknown[][];
      rows += tableRows.length;
      const started = process.hrtime.bigint();
      scratch.exec(table.sql);
      for (const index of indexes) if (index.tableName === table.name && /^CREATE\s+UNIQUE/i.test(index.sql)) scratch.exec(index.sql);
      if (tableRows.length > 0) {
        const insert = scratch.prepare(`INSERT INTO "${table.name}" VALUES (${tableRows[0]!.map(() => '?').join(', ')})`);
        for (let i = 0; i < tableRows.length; i += ROWS_PER_TRANSACTION) {
          scratch.exec('BEGIN');
          const end = Math.min(tableRows.length, i + ROWS_PER_TRANSACTION);
          for (let r = i; r < end; r += 1) insert.run(tableRows[r]);
          scratch.exec('COMMIT');
        }
      }
      insertNs += process.hrtime.bigint() - started;
    }
    const started = process.hrtime.bigint();
    scratch.exec('BEGIN');
    for (const index of indexes) if (!/^CREATE\s+UNIQUE/i.test(index.sql)) scratch.exec(index.sql);
    scratch.exec('COMMIT');
    indexNs = process.hrtime.bigint() - started;
  } finally {
    scratch.close();
    source.close();
    removeScratch(scratchFile);
  }
  return { rows, insertSeconds: seconds(insertNs), indexSeconds: seconds(indexNs), readSeconds: readLog(logFile) };
}

/** the log from position 0 in pages, each event's JSON parsed: the read side of a rebuild with no fold */
function readLog(logFile: string): number {
  const log = new Database(logFile, { readonly: true });
  try {
    const page = log.prepare('SELECT position, data, metadata, * FROM events WHERE position > ? ORDER BY position ASC LIMIT ?').raw(true);
    const started = process.hrtime.bigint();
    let after = 0;
    let parsed = 0;
    for (;;) {
      const rows = page.all(after, PAGE) as [number, string, string, ...unknown[]][];
      if (rows.length === 0) break;
      for (const [, data, metadata] of rows) {
        // kept so the parse cannot be optimised away
        parsed += Object.keys(JSON.parse(data) as object).length + Object.keys(JSON.parse(metadata) as object).length;
      }
      after = rows[rows.length - 1]![0];
    }
    const took = seconds(process.hrtime.bigint() - started);
    if (parsed < 0) throw new Error('unreachable');
    return took;
  } finally {
    log.close();
  }
}

function openScratch(file: string): Database.Database {
  removeScratch(file);
  const db = new Database(file);
  db.pragma('journal_mode = MEMORY');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -65536');
  return db;
}

function removeScratch(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${file}${suffix}`, { force: true });
}

function seconds(ns: bigint): number {
  return Number(ns) / 1e9;
}
