import { Client, type Pool } from 'pg';
import { GENESIS_HASH } from '../hash-chain';
import { postgresCustomerKeysTable } from '../personal-data/postgres-customer-keys';
import { tableExists } from './read-only-session';

/**
 * Versioned schema changes, applied in order, each once. A migration is never edited after it has
 * shipped: a change is a new version.
 */
export interface Migration {
  version: number;
  description: string;
  sql: (schema: string) => string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'the global event log',
    // position is the primary key and the read order; (stream_id, revision) serves stream reads and
    // the revision check; event_id serves idempotent retries. Data and metadata are jsonb: key order
    // may change, which the chain tolerates because it hashes canonical (sorted) JSON.
    sql: (s) => `
      create table ${s}.events (
        position    bigint      primary key,
        stream_id   text        not null,
        revision    integer     not null,
        event_id    text        not null,
        type        text        not null,
        data        jsonb       not null,
        metadata    jsonb       not null,
        recorded_at timestamptz not null,
        hash        char(64)    not null,
        prev_hash   char(64)    not null,
        constraint events_stream_revision unique (stream_id, revision),
        constraint events_event_id unique (event_id)
      )`,
  },
  {
    version: 2,
    description: 'append in one round trip when the log has not moved',
    // The writer decides and hashes against a snapshot read without the lock, then calls this in
    // one autocommitted statement. Under the lock it compares the head with the snapshot's: equal
    // means nothing was appended since (every append takes this lock), so the writer's revision
    // and idempotency checks still hold and the rows go in; otherwise it writes nothing and
    // answers false, and the writer redecides under the lock. plpgsql on purpose: each statement of
    // a volatile function takes a fresh snapshot, so the head is read after the lock is granted
    // (a single SQL statement would read it from a snapshot taken before the wait).
    sql: (s) => `
      create function ${s}.append_if_head(
        lock_key bigint, expected_head bigint, channel text,
        positions bigint[], stream_ids text[], revisions integer[], event_ids text[], types text[],
        datas jsonb[], metadatas jsonb[], recorded_ats timestamptz[], hashes text[], prev_hashes text[]
      ) returns boolean language plpgsql volatile as $fn$
      declare
        head bigint;
      begin
        perform pg_advisory_xact_lock(lock_key);
        select coalesce(max(position), 0) into head from ${s}.events;
        if head <> expected_head then
          return false;
        end if;
        insert into ${s}.events
          (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash, prev_hash)
        select * from unnest(positions, stream_ids, revisions, event_ids, types,
                             datas, metadatas, recorded_ats, hashes, prev_hashes);
        perform pg_notify(channel, positions[array_length(positions, 1)]::text);
        return true;
      end
      $fn$`,
  },
  {
    version: 3,
    description: 'append in one round trip from what the writer already knows, rows as one JSON array',
    // Like append_if_head, but the writer may decide without reading first: from the head and
    // stream revisions it remembers of its own earlier appends, or for a stream it has not seen,
    // from the revision the caller expects. Under the lock the function checks both: the head's
    // position and hash (nothing appended since, so the positions and the chain continue; the hash
    // too, so that even a log restored from a backup and grown again is not taken for the one the
    // writer remembers) and each stream's last
    // revision (-1: no stream) against what the writer assumed. Any difference writes nothing and
    // answers false; the writer then reads and decides again. An event id already stored fails the
    // insert on its unique constraint (23505), which the writer also answers by reading. Rows come
    // as one JSON array: data and metadata are the canonical JSON the chain hashes, embedded as
    // they are, so the client serialises each event once.
    sql: (s) => appendCheckedSql(s, 'jsonb', false),
  },
  {
    version: 4,
    description: 'data and metadata as json: the canonical text the chain hashed, stored without re-parsing',
    // jsonb parses every value into its binary form on insert and writes it back out as text on
    // every read: about half of the server's CPU per appended row, for operators the store never
    // uses. json keeps the text as sent (it is only checked to be JSON), and what the store sends is
    // the canonical JSON the chain hashed, so each row now holds exactly the hashed text. An
    // existing table is rewritten once here, under the migration lock (writers wait for it);
    // values keep their content, which is all that reading and verifying look at. append_checked is
    // replaced with the same signature, so processes of the previous release keep appending; their
    // own inserts of jsonb values go through PostgreSQL's assignment cast to json.
    sql: (s) => `
      alter table ${s}.events
        alter column data type json using data::json,
        alter column metadata type json using metadata::json;
      ${appendCheckedSql(s, 'json', true)}`,
  },
  {
    version: 5,
    description: 'append sealed by the server: positions and chain hashes taken from the head under the lock',
    // For writers that keep finding the head moved by another process. append_checked needs the
    // head the writer sealed its rows on, so under contention a writer's first guess fails, it
    // reads, its second guess often fails too, and it ends up deciding while holding the lock
    // through several round trips. This function takes the stream revisions the writer decided on
    // (checked as append_checked does: any difference writes nothing and answers null) and numbers
    // and hashes the rows itself from the head it reads under the lock, so the lock is held for one
    // statement and its commit. Each row carries the hashed text around its position (x before,
    // y after: chainEnvelopeAroundPosition), so the hash is sha256 of prev_hash, a newline, x, the
    // position and y, the same bytes the writer's own hashing covers. It answers the head before
    // the first row, the hash there, and the new hashes, 64 hex characters each, joined by ':'.
    sql: (s) => `
      create function ${s}.append_server_sealed(
        lock_key bigint, channel text, check_streams text[], check_revisions integer[], rows json
      ) returns text language plpgsql volatile as $fn$
      declare
        head bigint;
        head_hash text;
        start_head bigint;
        start_hash text;
        hashes text := '';
        h text;
        item json;
      begin
        perform pg_advisory_xact_lock(lock_key);
        if ${streamGuessWrong(s)} then
          return null;
        end if;
        select position, hash into head, head_hash from ${s}.events order by position desc limit 1;
        head := coalesce(head, 0);
        head_hash := coalesce(head_hash, '${GENESIS_HASH}');
        start_head := head;
        start_hash := head_hash;
        for item in select value from json_array_elements(rows) with ordinality as r(value, n) order by n loop
          head := head + 1;
          h := encode(sha256(convert_to(head_hash || E'\n' || (item->>'x') || head::text || (item->>'y'), 'UTF8')), 'hex');
          insert into ${s}.events
            (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash, prev_hash)
          values (head, item->>'s', (item->>'r')::integer, item->>'i', item->>'t', item->'d', item->'m', (item->>'a')::timestamptz, h, head_hash);
          hashes := hashes || ':' || h;
          head_hash := h;
        end loop;
        perform pg_notify(channel, head::text);
        return start_head::text || ':' || start_hash || hashes;
      end
      $fn$`,
  },
  {
    version: 6,
    description: "customer keys written in the same transaction as a new customer's events",
    // The keys table of the personal-data layer (the key store creates it with the same text,
    // postgresCustomerKeysTable, under the lock taken first here, so neither races the other in
    // the catalog) and the function a store
    // calls in the statement that writes a registration: each new key inserted unless the customer
    // has one; a customer whose stored key is another one (or was erased) fails the whole
    // statement with SQLSTATE CK001 naming them, so the events encrypted with the wrong key are
    // not written either. The same key sent again (a group retried) is no failure.
    sql: (s) => `
      select pg_advisory_xact_lock(hashtext('clientele.keys:${s}'));
      ${postgresCustomerKeysTable(s)};
      create function ${s}.store_customer_keys(ids text[], wrapped bytea[]) returns integer
      language plpgsql volatile as $fn$
      declare
        added integer;
        taken text;
      begin
        insert into ${s}.customer_keys (customer_id, wrapped_key)
        select * from unnest(ids, wrapped) on conflict do nothing;
        get diagnostics added = row_count;
        if added < cardinality(ids) then
          select string_agg(n.customer_id, ',') into taken
            from unnest(ids, wrapped) as n(customer_id, wrapped_key)
            join ${s}.customer_keys k on k.customer_id = n.customer_id
           where k.wrapped_key is distinct from n.wrapped_key;
          if taken is not null then
            raise exception 'customer keys already stored: %', taken using errcode = 'CK001';
          end if;
        end if;
        return added;
      end
      $fn$`,
  },
];

/**
 * append_checked as migration 3 created it (`jsonb`, the values' type in the rows it reads) and as
 * migration 4 replaced it (`json`). Migration 3's text must stay what it shipped as.
 */
function appendCheckedSql(s: string, valueType: 'jsonb' | 'json', replace: boolean): string {
  return `
      ${replace ? 'create or replace' : 'create'} function ${s}.append_checked(
        lock_key bigint, expected_head bigint, expected_hash text, channel text,
        check_streams text[], check_revisions integer[], rows json
      ) returns boolean language plpgsql volatile as $fn$
      declare
        head bigint;
        head_hash text;
        added integer;
      begin
        -- the head only grows: when it has already moved, say so without queueing for the lock
        select coalesce(max(position), 0) into head from ${s}.events;
        if head <> expected_head then
          return false;
        end if;
        perform pg_advisory_xact_lock(lock_key);
        select position, hash into head, head_hash from ${s}.events order by position desc limit 1;
        if coalesce(head, 0) <> expected_head or coalesce(head_hash, '${GENESIS_HASH}') <> expected_hash then
          return false;
        end if;
        if ${streamGuessWrong(s)} then
          return false;
        end if;
        insert into ${s}.events
          (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash, prev_hash)
        select p, s, r, i, t, d, m, a, h, v
          from json_to_recordset(rows) as x(p bigint, s text, r integer, i text, t text,
                                            d ${valueType}, m ${valueType}, a timestamptz, h text, v text);
        get diagnostics added = row_count;
        perform pg_notify(channel, (expected_head + added)::text);
        return true;
      end
      $fn$`;
}

/**
 * True when a stream's last revision (-1: no stream) differs from what the writer decided on
 * (check_streams, check_revisions). Part of append_checked since migration 3: the text must stay
 * as it shipped.
 */
function streamGuessWrong(s: string): string {
  return `exists (
          select 1 from unnest(check_streams, check_revisions) as c(stream_id, revision)
           where coalesce((select max(e.revision) from ${s}.events e where e.stream_id = c.stream_id), -1) <> c.revision
        )`;
}

/** A schema name we can put into SQL as an identifier without quoting surprises. */
export function assertSchemaName(schema: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(
      `schema: expected a lower-case PostgreSQL identifier (letters, digits, underscore; at most 63), got ${JSON.stringify(schema)}`,
    );
  }
}

/**
 * Brings the schema up to the newest version. Runs in one transaction under an advisory lock keyed
 * by the schema, so two processes starting at once never both migrate: the second waits, then sees
 * the versions the first recorded and applies nothing. DDL is transactional in PostgreSQL, so a
 * failed migration leaves the schema as it was.
 */
export async function migrate(pool: Pool, schema: string, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  assertSchemaName(schema);
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [`clientele.migrate:${schema}`]);
    await client.query(`create schema if not exists ${schema}`);
    await client.query(
      `create table if not exists ${schema}.migrations (
         version     integer     primary key,
         description text        not null,
         applied_at  timestamptz not null default now()
       )`,
    );
    const done = await client.query<{ version: number }>(`select version from ${schema}.migrations`);
    const applied = new Set(done.rows.map((r) => r.version));
    const ran: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      await client.query(m.sql(schema));
      await client.query(`insert into ${schema}.migrations (version, description) values ($1, $2)`, [
        m.version,
        m.description,
      ]);
      ran.push(m.version);
    }
    await client.query('commit');
    return ran;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * For a store opened read-only: the schema holds every migration this build reads with. Nothing is
 * created or migrated; a schema behind this build is named with what to do, as is one that holds
 * no log at all.
 */
export async function assertMigrated(pool: Pool, schema: string, migrations: readonly Migration[] = MIGRATIONS): Promise<void> {
  assertSchemaName(schema);
  if (!(await tableExists(pool, `${schema}.migrations`))) {
    throw new Error(`schema ${schema} holds no Clientele event log (no migrations table); opened to read only, nothing was created`);
  }
  const done = await pool.query<{ version: number }>(`select version from ${schema}.migrations`);
  const applied = new Set(done.rows.map((r) => r.version));
  const missing = migrations.filter((m) => !applied.has(m.version)).map((m) => m.version);
  if (missing.length > 0) {
    throw new Error(
      `schema ${schema} lacks migration${missing.length > 1 ? 's' : ''} ${missing.join(', ')} this build reads with; opened to read only, ` +
        'nothing was migrated: start the engine of this build on it once (it migrates at start), or read it with the build that wrote it',
    );
  }
}

/** Drops a schema and everything in it (benchmarks and tests that worked in a schema of their own). */
export async function dropSchema(url: string, schema: string): Promise<void> {
  assertSchemaName(schema);
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}
