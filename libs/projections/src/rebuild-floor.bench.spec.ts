import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { measureRebuildFloor } from './rebuild-floor.bench';

describe('measureRebuildFloor', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'clientele-floor-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (file: string, sql: string, rows: [string, unknown[][]][]) => {
    const db = new Database(file);
    db.exec(sql);
    db.transaction(() => {
      for (const [table, values] of rows) {
        const insert = db.prepare(`INSERT INTO ${table} VALUES (${values[0]!.map(() => '?').join(', ')})`);
        for (const v of values) insert.run(v);
      }
    })();
    db.close();
  };

  it('given rebuilt read models and a log, then it counts every table row, times inserts, indexes and the read, and leaves no scratch file behind', () => {
    const rebuilt = join(dir, 'rebuilt.sqlite');
    write(
      rebuilt,
      `CREATE TABLE a (id TEXT PRIMARY KEY, n INTEGER NOT NULL);
       CREATE UNIQUE INDEX a_n ON a (n);
       CREATE INDEX a_n_id ON a (n, id);
       CREATE TABLE b (k TEXT NOT NULL, v REAL);
       CREATE TABLE empty (x TEXT);`,
      [
        ['a', Array.from({ length: 25_001 }, (_, i) => [`id-${i}`, i])],
        ['b', [['x', 1.5], ['y', null]]],
      ],
    );
    const log = join(dir, 'events.sqlite');
    write(log, 'CREATE TABLE events (position INTEGER PRIMARY KEY, data TEXT NOT NULL, metadata TEXT NOT NULL)', [
      ['events', Array.from({ length: 2_500 }, (_, i) => [i + 1, JSON.stringify({ customerId: `c-${i}` }), '{"schemaVersion":1}'])],
    ]);
    const scratch = join(dir, 'floor.sqlite');

    const floor = measureRebuildFloor(rebuilt, log, scratch);

    expect(floor.rows).toBe(25_003);
    expect(floor.insertSeconds).toBeGreaterThan(0);
    expect(floor.indexSeconds).toBeGreaterThan(0);
    expect(floor.readSeconds).toBeGreaterThan(0);
    expect(existsSync(scratch)).toBe(false);
  });

  it('given a log with a row whose data is not JSON, then the read fails instead of timing less than the whole log', () => {
    const rebuilt = join(dir, 'rebuilt.sqlite');
    write(rebuilt, 'CREATE TABLE a (x TEXT)', [['a', [['one']]]]);
    const log = join(dir, 'events.sqlite');
    write(log, 'CREATE TABLE events (position INTEGER PRIMARY KEY, data TEXT NOT NULL, metadata TEXT NOT NULL)', [
      ['events', [[1, '{}', '{}'], [2, 'not json', '{}']]],
    ]);
    expect(() => measureRebuildFloor(rebuilt, log, join(dir, 'floor.sqlite'))).toThrow(SyntaxError);
  });
});
