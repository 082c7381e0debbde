import { openApiAnswerErrors } from '@clientele/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { ReferralProcessRunner, openStorage } from '@clientele/application';
import { bootstrapEngine } from './bootstrap';
import { loadEngineConfig } from './engine.config';
import { startTestEngine, type TestEngine } from './engine.test-support';

type Envelope = { type: string; commandId: string; correlationId?: string; data: Record<string, unknown> };
type StageEntry = { stage: string; eventId: string; eventType: string; causationId?: string };
type HistoryEntry = { id: string; type: string; revision: number; position: number; occurredAt: string; recordedAt: string; causationId?: string; correlationId?: string; commandId?: string };

const line = (unitPriceMinor: number) => ({ sku: 'BOOK-1', category: 'books', quantity: 1, unitPriceMinor, unitCostMinor: 700 });

describe('engine HTTP API', () => {
  let engine: TestEngine;
  let app: NestExpressApplication;
  let http: ReturnType<typeof request>;

  beforeEach(async () => {
    engine = await startTestEngine('engine');
    ({ app, http } = engine);
  });
  afterEach(() => engine.close());

  const send = (envelope: unknown) => http.post('/commands').send(envelope as object);
  const head = async (): Promise<number> => (await http.get('/health').expect(200)).body.store.head;
  const settle = () => app.get(ReferralProcessRunner).catchUp();
  const events = async (id: string): Promise<HistoryEntry[]> => (await http.get(`/customers/${id}/events`).expect(200)).body.events;

  const journey: Envelope[] = [
    { type: 'RegisterProspect', commandId: 'reg-ann', data: { customerId: 'ann', source: 'web', occurredAt: '2026-01-02T09:00:00Z', personal: { name: 'Ann' } } },
    { type: 'RecordPurchase', commandId: 'buy-ann-1', data: { customerId: 'ann', orderId: 'A-1', lines: [line(2500)], occurredAt: '2026-01-05T10:00:00Z' } },
    { type: 'RegisterProspect', commandId: 'reg-ben', correlationId: 'friends-campaign', data: { customerId: 'ben', source: 'referral', referredBy: 'ann', occurredAt: '2026-01-10T09:00:00Z' } },
    { type: 'RecordPurchase', commandId: 'buy-ben-1', correlationId: 'friends-campaign', data: { customerId: 'ben', orderId: 'B-1', lines: [line(1200)], occurredAt: '2026-01-12T10:00:00Z' } },
    { type: 'RecordPurchase', commandId: 'buy-cat-1', data: { customerId: 'cat', orderId: 'C-1', lines: [line(900)], occurredAt: '2025-01-15T10:00:00Z' } },
  ];
  const winBack: Envelope = { type: 'RecordPurchase', commandId: 'buy-cat-2', data: { customerId: 'cat', orderId: 'C-2', lines: [line(1900)], occurredAt: '2025-10-01T10:00:00Z' } };

  async function runJourney(): Promise<{ status: number; body: { status: string; events: unknown[] } }[]> {
    const answers = [];
    for (const command of journey) {
      answers.push(await send(command));
      await settle();
    }
    answers.push(await http.post('/sweeps/churn').send({ asOf: '2025-09-01T00:00:00Z' }));
    answers.push(await send(winBack));
    await settle();
    return answers.map((a) => ({ status: a.status, body: a.body }));
  }

  it('given the journey, then one person goes from prospect to advocate through a converted referral, each stage naming its cause', async () => {
    await runJourney();

    const ann = (await http.get('/customers/ann').expect(200)).body;
    expect(ann).toMatchObject({ customerId: 'ann', stage: 'advocate', referees: { credited: ['ben'], converted: ['ben'] } });
    const annEvents = await events('ann');
    const byId = new Map(annEvents.map((e) => [e.id, e]));
    expect((ann.stageHistory as StageEntry[]).map((s) => [s.stage, s.eventType])).toEqual([
      ['prospect', 'ProspectRegistered'],
      ['customer', 'CustomerConverted'],
      ['advocate', 'AdvocateRecognized'],
    ]);
    const [registered, converted, advocate] = ann.stageHistory as StageEntry[];
    expect(registered?.causationId).toBe('reg-ann');
    expect(byId.get(converted?.causationId ?? '')?.type).toBe('PurchaseRecorded');
    const referral = byId.get(advocate?.causationId ?? '');
    expect(referral?.type).toBe('ReferralConverted');

    // The referral on Ann's stream was caused by Ben's conversion, in Ben's conversation.
    const benEvents = await events('ben');
    const benConverted = benEvents.find((e) => e.type === 'CustomerConverted');
    expect(referral?.causationId).toBe(benConverted?.id);
    expect(referral?.correlationId).toBe('friends-campaign');
    expect(annEvents.map((e) => e.type)).toEqual([
      'ProspectRegistered',
      'PurchaseRecorded',
      'CustomerConverted',
      'ReferralCredited',
      'ReferralConverted',
      'AdvocateRecognized',
    ]);
    expect(annEvents.map((e) => e.revision)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const e of annEvents) {
      expect(e).toEqual(expect.objectContaining({ occurredAt: expect.any(String), recordedAt: expect.any(String), position: expect.any(Number) }));
    }
  });

  it('given the journey, then another goes from customer through churn (sweep as of a date) back to customer', async () => {
    const answers = await runJourney();

    expect(answers[5]).toEqual({ status: 200, body: { asOf: '2025-09-01T00:00:00.000Z', customers: 3, churned: 1, refused: 0, conflicts: 0 } });
    const cat = (await http.get('/customers/cat').expect(200)).body;
    expect(cat.stage).toBe('customer');
    expect((cat.stageHistory as StageEntry[]).map((s) => [s.stage, s.eventType, s.causationId?.startsWith('churn:') ?? false])).toEqual([
      ['prospect', 'ProspectRegistered', false],
      ['customer', 'CustomerConverted', false],
      ['churned', 'CustomerChurned', true],
      ['customer', 'CustomerReactivated', false],
    ]);
    const catEvents = await events('cat');
    const reactivated = catEvents.find((e) => e.type === 'CustomerReactivated');
    expect(catEvents.find((e) => e.id === reactivated?.causationId)).toMatchObject({ type: 'PurchaseRecorded', commandId: 'buy-cat-2' });
  });

  it('given the journey was run, when every command is sent again, then nothing changes and each answer repeats the first', async () => {
    const first = await runJourney();
    const before = { ann: await events('ann'), ben: await events('ben'), cat: await events('cat'), head: await head() };

    const second = await runJourney();

    expect({ ann: await events('ann'), ben: await events('ben'), cat: await events('cat'), head: await head() }).toEqual(before);
    second.forEach((answer, i) => {
      const earlier = first[i];
      if (answer.body.status === undefined) return expect(answer).toEqual({ ...earlier, body: { ...earlier?.body, churned: 0 } });
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ ...earlier?.body, status: 'duplicate' });
    });
  });

  describe('bad input stores nothing', () => {
    beforeEach(async () => {
      await send(journey[0]).expect(201);
    });

    /** superagent serialises a Buffer body as JSON unless told to send it as it is */
    const asBytes = ((b: Buffer) => b) as unknown as (body: unknown) => string;

    async function expectProblem(res: request.Response, status: number, code: string): Promise<Record<string, unknown>> {
      expect(res.status).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status, code, type: `urn:clientele:problem:${code}` });
      expect(await head()).toBe(1);
      return res.body;
    }

    it('a command id sent again with other content → 409 naming the field that differs', async () => {
      const first = journey[0] as { data: Record<string, unknown> };
      const body = await expectProblem(await send({ ...first, data: { ...first.data, source: 'billboard' } }), 409, 'command_id_reused');
      expect(body.detail).toContain('data.source differs from what it stored (ProspectRegistered at position 1)');
      expect(body.field).toBe('data.source');
    });

    it('malformed JSON → 400', async () => {
      const res = await http.post('/commands').set('Content-Type', 'application/json').send('{"type": "RecordPurchase",');
      await expectProblem(res, 400, 'malformed_json');
    });

    it('unknown or internal command type → 400 naming type', async () => {
      for (const type of ['DeleteEverything', 'CreditReferral']) {
        const body = await expectProblem(await send({ ...journey[1], type }), 400, 'invalid_command');
        expect(body.errors).toEqual([{ field: 'type', expected: expect.stringContaining('RegisterProspect') }]);
      }
    });

    it('missing and extra fields → 400 naming each', async () => {
      const body = await expectProblem(
        await send({ type: 'RecordPurchase', commandId: 'x', data: { customerId: 'ann', lines: [{ ...line(100), gift: true }], occurredAt: '2026-01-05T10:00:00Z', coupon: 'X' } }),
        400,
        'invalid_command',
      );
      expect(body.errors).toEqual([
        { field: 'data.coupon', expected: 'no such field (remove it)' },
        { field: 'data.lines[0].gift', expected: 'no such field (remove it)' },
        { field: 'data.orderId', expected: expect.stringContaining('an id') },
      ]);
    });

    it('negative amount → 400 with the exact path', async () => {
      const body = await expectProblem(await send({ ...journey[1], data: { ...journey[1]?.data, lines: [line(-5)] } }), 400, 'invalid_command');
      expect(body.errors).toEqual([{ field: 'data.lines[0].unitPriceMinor', expected: 'a non-negative integer (minor units)' }]);
    });

    it('self-referral → 422 with the domain code, naming the field by its path in the envelope as a 400 does', async () => {
      const body = await expectProblem(
        await send({ type: 'RegisterProspect', commandId: 'self', data: { customerId: 'dan', source: 'web', referredBy: 'dan', occurredAt: '2026-01-02T09:00:00Z' } }),
        422,
        'self_referral',
      );
      expect(body.field).toBe('data.referredBy');
    });

    it('oversized bodies → 413, for single commands and batches', async () => {
      const huge = { ...journey[1], data: { ...journey[1]?.data, note: 'x'.repeat(300 * 1024) } };
      await expectProblem(await send(huge), 413, 'payload_too_large');
      const many = Array.from({ length: 5001 }, (_, i) => ({ ...journey[0], commandId: `c-${i}` }));
      const body = await expectProblem(await http.post('/commands/batch').send({ commands: many }), 413, 'batch_too_large');
      expect(body.errors).toEqual([{ field: 'commands', expected: 'an array of at most 5000 command envelopes' }]);
    });

    it('unknown route → 404 problem; a body that is not a JSON object → 400 naming the body', async () => {
      await expectProblem(await http.get('/nowhere'), 404, 'not_found');
      const body = await expectProblem(await http.post('/commands').set('Content-Type', 'application/json').send('"RecordPurchase"'), 400, 'invalid_command');
      expect(body.errors).toEqual([{ field: '', expected: expect.stringContaining('JSON object') }]);
    });

    it('a body sent as another media type → 415 naming the content type, even when it is a valid command', async () => {
      for (const [type, text] of [['text/plain', JSON.stringify(journey[1])], ['application/x-www-form-urlencoded', 'type=RecordPurchase']] as const) {
        const body = await expectProblem(await http.post('/commands').set('Content-Type', type).send(text), 415, 'unsupported_media_type');
        expect(body.errors).toEqual([{ field: 'content-type', expected: 'application/json' }]);
        expect(body.detail).toContain(`got ${type}`);
      }
      await expectProblem(await http.post('/commands/batch').set('Content-Type', 'text/csv').send('a,b'), 415, 'unsupported_media_type');
      // a JSON media type with parameters, and the +json family, are JSON
      await expectProblem(await http.post('/commands').set('Content-Type', 'application/vnd.clientele+json; charset=utf-8').send('[]'), 400, 'invalid_command');
      // JSON in another charset is named as the content type's fault too
      const latin = await expectProblem(await http.post('/commands').set('Content-Type', 'application/json; charset=iso-8859-1').send('{}'), 415, 'unsupported_media_type');
      expect(latin.errors).toEqual([{ field: 'content-type', expected: 'JSON in UTF-8 (no charset, or charset=utf-8)' }]);
      const utf16 = await expectProblem(
        // bytes as they are (superagent would otherwise serialise a Buffer as JSON)
        await http.post('/commands').set('Content-Type', 'application/json; charset=utf-16le').serialize(asBytes).send(Buffer.from(JSON.stringify(journey[0]), 'utf16le')),
        415,
        'unsupported_media_type',
      );
      expect(utf16.errors).toEqual([{ field: 'content-type', expected: 'JSON in UTF-8 (no charset, or charset=utf-8)' }]);
      // bytes that are not UTF-8, sent without a charset, are refused rather than stored as replacement characters
      const latinBytes = Buffer.from(JSON.stringify({ ...journey[0], commandId: 'latin-bytes' }).replace('"Ann"', '"Ren\u00e9e"'), 'latin1');
      await expectProblem(await http.post('/commands').set('Content-Type', 'application/json').serialize(asBytes).send(latinBytes), 415, 'unsupported_media_type');
      const brotli = await expectProblem(await http.post('/commands').set('Content-Type', 'application/json').set('Content-Encoding', 'br').send('{}'), 415, 'unsupported_media_type');
      expect(brotli.errors).toEqual([{ field: 'content-encoding', expected: 'identity, gzip or deflate' }]);
    });

    it('unknown customer → 404 problem', async () => {
      await expectProblem(await http.get('/customers/nobody'), 404, 'unknown_customer');
      await expectProblem(await http.get('/customers/nobody/events'), 404, 'unknown_customer');
      await expectProblem(await http.get('/customers/nobody/events?fromRevision=3&limit=2'), 404, 'unknown_customer');
    });

    it('history paging: a bad fromRevision or limit → 400 naming it; an unknown parameter is refused', async () => {
      expect([200, 201]).toContain((await send(journey[0])).status);
      const bad = await http.get('/customers/ann/events?fromRevision=-1&limit=0&colour=red').expect(400);
      expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['colour', 'fromRevision', 'limit']);
    });
  });

  it('answers customers and histories as the served OpenAPI document describes them, after the whole journey', async () => {
    await runJourney();
    const doc = (await http.get('/docs-json').expect(200)).body;
    for (const id of ['ann', 'ben', 'cat']) {
      expect({ id, errors: openApiAnswerErrors(doc, '/customers/{id}', 'get', (await http.get(`/customers/${id}`).expect(200)).body) }).toEqual({ id, errors: [] });
      expect({ id, errors: openApiAnswerErrors(doc, '/customers/{id}', 'get', (await http.get(`/customers/${id}?asOf=2026-06-30`).expect(200)).body) }).toEqual({ id, errors: [] });
      expect({ id, errors: openApiAnswerErrors(doc, '/customers/{id}/events', 'get', (await http.get(`/customers/${id}/events`).expect(200)).body) }).toEqual({ id, errors: [] });
    }
  });

  it('pages a customer history by revision: the pages together are the whole history', async () => {
    await runJourney();
    const whole = (await http.get('/customers/ann/events').expect(200)).body;
    expect(whole.nextRevision).toBeUndefined();
    expect(whole.events.length).toBeGreaterThan(3);
    const paged: { revision: number }[] = [];
    let from: number | undefined = 0;
    while (from !== undefined) {
      const page: { events: { revision: number }[]; nextRevision?: number } = (await http.get(`/customers/ann/events?fromRevision=${from}&limit=2`).expect(200)).body;
      expect(page.events.length).toBeLessThanOrEqual(2);
      paged.push(...page.events);
      from = page.nextRevision;
    }
    expect(paged).toEqual(whole.events);
    // a known customer read past the end has no events, not a 404
    const past = (await http.get(`/customers/ann/events?fromRevision=${whole.events.length + 5}`).expect(200)).body;
    expect(past).toEqual({ customerId: 'ann', events: [] });
  });

  it('given a batch, then each item is answered at its index with its own status', async () => {
    const res = await http
      .post('/commands/batch')
      .send({
        commands: [
          journey[0],
          journey[1],
          { ...journey[1], data: { ...journey[1]?.data, lines: [] } },
          { type: 'RegisterProspect', commandId: 'self', data: { customerId: 'dan', source: 'web', referredBy: 'dan', occurredAt: '2026-01-02T09:00:00Z' } },
          journey[0],
        ],
      })
      .expect(200);

    expect(res.body.results.map((r: { index: number; status: number }) => [r.index, r.status])).toEqual([
      [0, 201],
      [1, 201],
      [2, 400],
      [3, 422],
      [4, 200],
    ]);
    expect(res.body.results[2].problem.errors).toEqual([{ field: 'data.lines', expected: expect.stringContaining('non-empty array') }]);
    expect(res.body.results[3]).toMatchObject({ commandId: 'self', problem: { code: 'self_referral' } });
    expect(res.body.results[4].result.status).toBe('duplicate');
  });

  it('serves OpenAPI, health and Prometheus metrics', async () => {
    await send(journey[0]).expect(201);
    const doc = (await http.get('/docs-json').expect(200)).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/commands', '/commands/batch', '/customers/{id}', '/customers/{id}/events']));
    await settle();
    const health = (await http.get('/health').expect(200)).body;
    expect(health).toMatchObject({ status: 'ok', store: { reachable: true, head: 1 }, processManager: { running: true, position: 1, lag: 0 } });
    const metrics = (await http.get('/metrics').expect(200)).text;
    expect(metrics).toContain('clientele_commands_total{type="RegisterProspect",status="applied"} 1');
    expect(metrics).toContain('clientele_command_duration_seconds_count{type="RegisterProspect"} 1');
    expect(metrics).toContain('clientele_process_manager_lag_events 0');
  });

  it('counts HTTP requests by route template and status, also those refused before routing', async () => {
    await send(journey[0]).expect(201);
    await send(journey[0]).expect(200);
    await http.get('/customers/ann').expect(200);
    await http.get('/customers/nobody').expect(404);
    await http.get('/no/such/path').expect(404);
    await http.post('/commands').set('content-type', 'application/json').send('{not json').expect(400);
    const metrics = (await http.get('/metrics').expect(200)).text;
    const count = (labels: string) => {
      const line = metrics.split('\n').find((l) => l.startsWith(`clientele_http_request_duration_seconds_count{${labels}}`));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    expect(count('method="POST",route="/commands",status="201"')).toBe(1);
    expect(count('method="POST",route="/commands",status="200"')).toBe(1);
    // the template, not the customer id
    expect(count('method="GET",route="/customers/:id",status="200"')).toBe(1);
    expect(count('method="GET",route="/customers/:id",status="404"')).toBe(1);
    expect(metrics).not.toContain('route="/customers/ann"');
    expect(count('method="GET",route="(no route)",status="404"')).toBe(1);
    expect(count('method="POST",route="(no route)",status="400"')).toBe(1);
  });
});

describe('engine HTTP API, when the store fails for now', () => {
  let dir: string;
  let app: NestExpressApplication;

  afterEach(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("given a batch whose command fails for now, then the same customer's later commands are held, not stored ahead of it, and a resend keeps the order", async () => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-engine-held-'));
    const config = loadEngineConfig({ CLIENTELE_DATA_DIR: dir, CLIENTELE_DURABILITY: 'normal', LOG_LEVEL: 'silent' });
    const storage = await openStorage(config.storage);
    // Ann's stream refuses its first appends (a full disk, say); every other stream works
    const append = storage.store.appendToStream.bind(storage.store);
    let failures = 3;
    storage.store.appendToStream = (streamId, events, options) =>
      streamId === 'customer-ann' && failures-- > 0 ? Promise.reject(new Error('disk I/O error')) : append(streamId, events, options);
    app = await bootstrapEngine(config, { storage });
    const http = request(app.getHttpServer());
    const register = (id: string) => ({ type: 'RegisterProspect', commandId: `reg-${id}`, data: { customerId: id, source: 'web', occurredAt: '2026-01-02T09:00:00Z' } });
    const buy = (id: string) => ({ type: 'RecordPurchase', commandId: `buy-${id}`, data: { customerId: id, orderId: `${id}-1`, lines: [line(2500)], occurredAt: '2026-01-05T10:00:00Z' } });
    const batch = { commands: [register('ann'), register('bob'), buy('ann'), buy('bob')] };

    const first = (await http.post('/commands/batch').send(batch).expect(200)).body.results;

    expect(first.map((r: { status: number }) => r.status)).toEqual([500, 201, 500, 201]);
    expect(first[2]).toMatchObject({ commandId: 'buy-ann', problem: { detail: expect.stringContaining('not run: an earlier command of the same stream failed for now') } });
    await http.get('/customers/ann/events').expect(404);

    const again = (await http.post('/commands/batch').send(batch).expect(200)).body.results;

    expect(again.map((r: { status: number }) => r.status)).toEqual([201, 200, 201, 200]);
    const types = (await http.get('/customers/ann/events').expect(200)).body.events.map((e: { type: string }) => e.type);
    expect(types).toEqual(['ProspectRegistered', 'PurchaseRecorded', 'CustomerConverted']);
  });
});
