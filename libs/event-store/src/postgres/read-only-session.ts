import type { Pool } from 'pg';

/**
 * The connection option that makes every transaction of a session read-only
 * (`default_transaction_read_only`): set by the server, so a write from a store opened to read only is
 * refused there, not merely not attempted here.
 */
export const READ_ONLY_SESSION = '-c default_transaction_read_only=on';

/** Whether `table` (schema-qualified) exists, asked without creating anything: a read-only open checks before it reads. */
export async function tableExists(pool: Pick<Pool, 'query'>, table: string): Promise<boolean> {
  const { rows } = await pool.query<{ found: string | null }>('select to_regclass($1)::text as found', [table]);
  return rows[0]?.found != null;
}
