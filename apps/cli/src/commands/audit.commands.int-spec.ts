import { Command } from 'commander';
import { Client } from 'pg';
import { Writable } from 'node:stream';
import { PostgresEventStore } from '@clientele/event-store';
import { appendTouchpoints, describeWithServer, PostgresServer, tempDir } from '@clientele/testing';
import { registerAuditCommands } from './audit.commands';

class Captured extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describeWithServer(PostgresServer, 'audit CLI commands on PostgreSQL', (url) => {
  const schema = `audit_cli_${process.pid}_${Date.now()}`;
  const address = `postgres:${url}#${schema}`;
  const tmp = tempDir('clientele-audit-pg-');

  async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const stdout = new Captured();
    const stderr = new Captured();
    let code = 0;
    const program = new Command('clientele').exitOverride();
    registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env: {} });
    await program.parseAsync([...args, '--store', address], { from: 'user' });
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  beforeAll(async () => {
    const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
    try {
      await appendTouchpoints(store, 60, 6);
    } finally {
      await store.close();
    }
  });

  afterAll(async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
    tmp.remove();
  });

  it('verifies the log and a stream, exports, and reports a deleted row', async () => {
    // given the schema as written: verify, stream verify and export succeed
    expect((await run(['audit', 'verify'])).stdout).toContain('log: intact — 60 events checked, last position 60');
    expect((await run(['audit', 'verify', '--stream', 'customer-c001'])).stdout).toContain('stream customer-c001: intact — 10 events checked');
    const file = tmp.file('all.ndjson');
    expect((await run(['export', '--out', file, '--quiet'])).code).toBe(0);

    // when a row is deleted by hand
    const client = new Client({ connectionString: url });
    await client.connect();
    await client.query(`delete from ${schema}.events where position = 30`);
    await client.end();

    // then the store fails verification at 31, and the export taken before still verifies
    const broken = await run(['audit', 'verify']);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain('BROKEN at position 31 — position_gap');
    const stream = await run(['audit', 'verify', '--stream', 'customer-c000']);
    expect(stream.code).toBe(1);
    expect(stream.stdout).toContain('revision_gap');
    const offline = new Captured();
    const program = new Command('clientele').exitOverride();
    let code = -1;
    registerAuditCommands(program, { stdout: offline, stderr: new Captured(), setExitCode: (c) => (code = c), env: {} });
    await program.parseAsync(['audit', 'verify', '--from-export', file], { from: 'user' });
    expect(code).toBe(0);
  });
});
