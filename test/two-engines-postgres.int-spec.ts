import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';

import { eventsOfLog, PostgresEventStore, verifyChain, type StoredEvent } from '@clientele/event-store';
import { describeWithServer, freeLoopbackPort, PostgresServer } from '@clientele/testing';

/**
 * Journey: two engine processes share one PostgreSQL schema (scale-out). The same customers get
 * commands through both at once; the log must stay one whole chain, each stream's revisions
 * contiguous, each command stored once, and both engines must answer a customer the same way.
 */
const ROOT = resolve(__dirname, '..');
// Compiled inside the repository so the children resolve node_modules as `npm start` does.
const BUILD = join(ROOT, 'dist', `two-engines-${process.pid}`);
const MAIN = join(BUILD, 'apps', 'engine', 'src', 'main.js');

const CUSTOMERS = 40;
const REFERRERS = 10;
/** orders per customer through each engine */
const ORDERS_EACH = 2;
const DAY = '2026-04-01';

interface Engine {
  name: string;
  url: string;
  child: ChildProcess;
  log: string[];
}

interface Envelope {
  type: string;
  commandId: string;
  data: Record<string, unknown>;
}

interface BatchItem {
  index: number;
  status: number;
  commandId?: string;
  result?: { commandId: string; status: string; events: Array<{ id: string; position: number }> };
  problem?: { code: string };
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

/** Sends a batch and re-sends what the engine answered with 409 concurrency_conflict, as a client is told to. */
async function sendBatch(engine: Engine, commands: Envelope[]): Promise<BatchItem[]> {
  const answers = new Map<string, BatchItem>();
  let pending = commands;
  for (let round = 0; pending.length > 0 && round < 10; round++) {
    const response = await fetch(`${engine.url}/commands/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ commands: pending }),
    });
    if (response.status !== 200) throw new Error(`${engine.name}: batch answered ${response.status}: ${await response.text()}`);
    const { results } = (await response.json()) as { results: BatchItem[] };
    const again: Envelope[] = [];
    results.forEach((item) => {
      const command = pending[item.index]!;
      if (item.status === 409 && item.problem?.code === 'concurrency_conflict') again.push(command);
      else answers.set(command.commandId, item);
    });
    pending = again;
  }
  return commands.map((c) => answers.get(c.commandId) ?? { index: -1, status: 409, commandId: c.commandId });
}

function startEngine(name: string, port: number, env: NodeJS.ProcessEnv): Engine {
  const child = spawn(process.execPath, [MAIN], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const keep = (chunk: Buffer): void => {
    log.push(chunk.toString());
    if (log.length > 200) log.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { name, url: `http://127.0.0.1:${port}`, child, log };
}

async function waitUntilReady(engine: Engine): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (engine.child.exitCode !== null) throw new Error(`${engine.name} exited with ${engine.child.exitCode}: ${engine.log.join('')}`);
    try {
      if ((await fetch(`${engine.url}/health`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${engine.name} did not answer /health within 30 s: ${engine.log.join('')}`);
}

/** Both referral process managers have read the whole log, and the log stopped growing. */
async function waitUntilSettled(engines: Engine[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  let previous = -1;
  while (Date.now() < deadline) {
    const statuses = await Promise.all(engines.map(async (e) => (await getJson(`${e.url}/health`)).body as { store: { head: number }; processManager: { lag: number } }));
    const head = Math.max(...statuses.map((s) => s.store.head));
    if (statuses.every((s) => s.processManager.lag === 0 && s.store.head === head) && head === previous) return;
    previous = head;
    await sleep(300);
  }
  throw new Error('the process managers did not catch up within 20 s');
}

/** SIGTERM, as an orchestrator stops a process; answers how it ended (SIGKILL only if it hung). */
async function stopEngine(engine: Engine): Promise<number | NodeJS.Signals | null> {
  if (engine.child.exitCode !== null || engine.child.signalCode !== null) return engine.child.exitCode ?? engine.child.signalCode;
  const exited = new Promise<number | NodeJS.Signals | null>((done) => engine.child.once('exit', (code, signal) => done(code ?? signal)));
  engine.child.kill('SIGTERM');
  const timer = setTimeout(() => engine.child.kill('SIGKILL'), 10_000);
  const ended = await exited;
  clearTimeout(timer);
  return ended;
}

const customerId = (i: number): string => `dual-${String(i).padStart(3, '0')}`;
const register = (i: number): Envelope => ({
  type: 'RegisterProspect',
  commandId: `reg-${customerId(i)}`,
  data: {
    customerId: customerId(i),
    source: 'web',
    occurredAt: `${DAY}T08:00:00Z`,
    // customers after the first REFERRERS were referred by one of them
    ...(i >= REFERRERS ? { referredBy: customerId(i % REFERRERS) } : {}),
    personal: { name: `Customer ${i}`, email: `${customerId(i)}@example.org` },
  },
});
const purchase = (i: number, engine: string, n: number): Envelope => ({
  type: 'RecordPurchase',
  commandId: `order-${customerId(i)}-${engine}-${n}`,
  data: {
    customerId: customerId(i),
    orderId: `${customerId(i)}-${engine}-${n}`,
    occurredAt: `${DAY}T${String(10 + n).padStart(2, '0')}:${engine === 'a' ? '15' : '45'}:00Z`,
    lines: [{ sku: `SKU-${n}`, category: 'books', quantity: 1 + n, unitPriceMinor: 1250, unitCostMinor: 700 }],
  },
});

describeWithServer(PostgresServer, 'two engine processes on one PostgreSQL schema (journey)', (databaseUrl) => {
  const schema = `two_engines_${process.pid}_${Date.now()}`;
  const dirs: string[] = [];
  let engines: Engine[] = [];

  beforeAll(async () => {
    const built = spawnSync('npx', ['swc', 'apps', 'libs', '--out-dir', BUILD, '--copy-files', '--quiet', '--config-file', '.swcrc'], { cwd: ROOT, encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`could not compile the engine: ${built.stderr}`);
    const masterKey = randomBytes(32).toString('base64');
    const ports = [await freeLoopbackPort(), await freeLoopbackPort()];
    engines = ['a', 'b'].map((name, i) => {
      const dataDir = mkdtempSync(join(tmpdir(), `clientele-engine-${name}-`));
      dirs.push(dataDir);
      return startEngine(name, ports[i]!, {
        CLIENTELE_STORE: 'postgres',
        DATABASE_URL: databaseUrl,
        CLIENTELE_PG_SCHEMA: schema,
        CLIENTELE_DATA_DIR: dataDir,
        CLIENTELE_MASTER_KEY: masterKey,
        LOG_LEVEL: 'warn',
      });
    });
    await Promise.all(engines.map(waitUntilReady));
  }, 60_000);

  afterAll(async () => {
    const codes = await Promise.all(engines.map(stopEngine));
    rmSync(BUILD, { recursive: true, force: true });
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    // the log, and the read models the engines keep beside it (the pointer schema and its generations)
    await client.query(`drop schema if exists ${schema} cascade`);
    const readModels = await client.query<{ nspname: string }>(`select nspname from pg_namespace where nspname like $1`, [`${schema}\\_read\\_models%`]);
    for (const { nspname } of readModels.rows) await client.query(`drop schema if exists ${nspname} cascade`);
    await client.end();
    // a clean stop: Nest runs the shutdown hooks (pools closed) and re-raises SIGTERM; never a hang ended by SIGKILL
    for (const ended of codes) expect([0, 'SIGTERM']).toContain(ended);
  }, 30_000);

  it('keeps one whole chain, contiguous streams, each command once, and the same answers from both engines', async () => {
    const [a, b] = engines as [Engine, Engine];
    const all = Array.from({ length: CUSTOMERS }, (_, i) => i);

    // given the referrers registered, half through each engine at once
    const referrers = all.filter((i) => i < REFERRERS);
    const referees = all.filter((i) => i >= REFERRERS);
    const sent: Array<{ command: Envelope; answer: BatchItem }> = [];
    const through = async (engine: Engine, commands: Envelope[]): Promise<void> => {
      const answers = await sendBatch(engine, commands);
      commands.forEach((command, i) => sent.push({ command, answer: answers[i]! }));
    };
    await Promise.all([through(a, referrers.filter((i) => i % 2 === 0).map(register)), through(b, referrers.filter((i) => i % 2 === 1).map(register))]);

    // when the referees register (the process managers credit their referrers) and every customer
    // buys through both engines at the same moment, each engine with its own order ids
    await Promise.all([through(a, referees.filter((i) => i % 2 === 0).map(register)), through(b, referees.filter((i) => i % 2 === 1).map(register))]);
    const ordersVia = (engine: string): Envelope[] => all.flatMap((i) => Array.from({ length: ORDERS_EACH }, (_, n) => purchase(i, engine, n)));
    await Promise.all([through(a, ordersVia('a')), through(b, ordersVia('b'))]);
    await waitUntilSettled(engines);

    // then every command was applied once
    expect(sent.filter((s) => s.answer.status !== 201).map((s) => `${s.command.commandId}: ${s.answer.status} ${s.answer.problem?.code ?? s.answer.result?.status}`)).toEqual([]);

    const store = await PostgresEventStore.open({ connectionString: databaseUrl, schema, poolSize: 2 });
    let log: StoredEvent[];
    try {
      // and the chain over the whole log verifies
      const report = await verifyChain(eventsOfLog(store));
      expect(report).toMatchObject({ ok: true, eventsChecked: await store.headPosition() });
      log = await store.readAll();
    } finally {
      await store.close();
    }

    // and each stream's revisions run 0, 1, 2, … in log order
    const revisions = new Map<string, number[]>();
    for (const e of log) revisions.set(e.streamId, [...(revisions.get(e.streamId) ?? []), e.revision]);
    for (const [streamId, list] of revisions) expect({ streamId, list }).toEqual({ streamId, list: list.map((_, i) => i) });

    // and each command's events (ours and the process managers') are one run, stored once
    const byCommand = new Map<string, StoredEvent[]>();
    for (const e of log) {
      const id = String(e.metadata.commandId);
      byCommand.set(id, [...(byCommand.get(id) ?? []), e]);
    }
    for (const [commandId, events] of byCommand) {
      const first = events[0]!;
      const oneRun = events.every((e, i) => e.streamId === first.streamId && e.position === first.position + i && e.revision === first.revision + i);
      expect({ commandId, oneRun }).toEqual({ commandId, oneRun: true });
    }
    for (const { command, answer } of sent) {
      expect((byCommand.get(command.commandId) ?? []).map((e) => e.id)).toEqual(answer.result?.events.map((e) => e.id));
    }
    // the referral process managers of both engines credited and converted each referral once
    const credited = log.filter((e) => e.type === 'ReferralCredited');
    const converted = log.filter((e) => e.type === 'ReferralConverted');
    expect(credited).toHaveLength(referees.length);
    expect(new Set(credited.map((e) => String(e.data.refereeId))).size).toBe(referees.length);
    expect(converted).toHaveLength(referees.length);

    // and both engines answer each customer identically, with every order of both engines counted
    for (const i of all) {
      const [fromA, fromB] = await Promise.all([getJson(`${a.url}/customers/${customerId(i)}`), getJson(`${b.url}/customers/${customerId(i)}`)]);
      expect(fromA.status).toBe(200);
      expect(fromB).toEqual(fromA);
      expect((fromA.body as { orders: number }).orders).toBe(2 * ORDERS_EACH);
    }
  }, 60_000);
});
