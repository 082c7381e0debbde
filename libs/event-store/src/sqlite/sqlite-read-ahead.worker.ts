import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { EVENT_COLUMNS, type EventColumns, type ReadAheadReply, type ReadAheadThreadData } from './sqlite-read-ahead';

/**
 * The read-ahead thread: reads the pages of `(afterPosition, upTo]` of one store file through its
 * own read-only connection, as far as the main thread's credit allows, and posts each page's
 * columns (see ReadAheadReply). It stops at the first error, which it posts.
 */
const port = parentPort;
if (!port) throw new Error('sqlite-read-ahead.worker runs only as a worker thread');
const { file, afterPosition, upTo, pageSize, depth } = workerData as ReadAheadThreadData;

let credit = depth;
let after = afterPosition;
let done = false;
let db: Database.Database | undefined;
let page: Database.Statement | undefined;

function post(reply: ReadAheadReply): void {
  port!.postMessage(reply);
}

function fail(error: unknown): void {
  done = true;
  const e = error instanceof Error ? error : new Error(String(error));
  post({ t: 'error', name: e.name, message: e.message });
  db?.close();
}

function pump(): void {
  while (credit > 0 && !done) {
    credit -= 1;
    try {
      const rows = page!.all(after, upTo, pageSize) as EventColumns[];
      if (rows.length > 0) {
        const columns: EventColumns[number][] = [];
        for (const row of rows) for (const value of row) columns.push(value);
        post({ t: 'page', columns });
        after = rows[rows.length - 1]![0];
      }
      if (rows.length < pageSize || after >= upTo) {
        done = true;
        db!.close();
        post({ t: 'end' });
      }
    } catch (error) {
      fail(error);
    }
  }
}

try {
  db = new Database(file, { readonly: true, fileMustExist: true });
  page = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE position > ? AND position <= ? ORDER BY position ASC LIMIT ?`).raw(true);
} catch (error) {
  fail(error);
}
// the thread stays until the main thread ends it, so its exit always means that, or a crash
port.on('message', (more: number) => {
  credit += more;
  pump();
});
pump();
