import { rmSync } from 'node:fs';
import { EVENT_STORE, ReferralProcessRunner } from '@clientele/application';
import type { EventStore } from '@clientele/event-store';
import { openApiAnswerErrors } from '@clientele/testing';
import { startTestEngine, type TestEngine } from './engine.test-support';

describe('an engine that is stopping', () => {
  let engine: TestEngine | undefined;

  afterEach(async () => {
    await engine?.close();
    engine = undefined;
  });

  it('refuses new work with 503 from the first step of its stop, while the process manager and the store still close, and says stopping on /health', async () => {
    engine = await startTestEngine('stopping');
    const { app, http } = engine;
    const document = (await http.get('/docs-json').expect(200)).body;
    await http
      .post('/commands')
      .send({ type: 'RegisterProspect', commandId: 'r-ada', data: { customerId: 'ada', source: 'web', occurredAt: '2026-02-01T09:00:00Z' } })
      .expect(201);
    const store = app.get<EventStore>(EVENT_STORE);
    const head = await store.headPosition();

    // the process manager's stop (a later step of the stop) is held until the requests below are answered
    const runner = app.get(ReferralProcessRunner);
    const stopRunner = runner.stop.bind(runner);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const inProcessManagerStop = new Promise<void>((resolve) => (reached = resolve));
    jest.spyOn(runner, 'stop').mockImplementation(async () => {
      reached();
      await held;
      await stopRunner();
    });
    const closing = app.close();
    await inProcessManagerStop;

    const refused = await http
      .post('/commands')
      .send({ type: 'RecordTouchpoint', commandId: 't-ada', data: { customerId: 'ada', channel: 'email', occurredAt: '2026-02-02T09:00:00Z' } })
      .expect(503);
    expect(refused.body).toMatchObject({ status: 503, code: 'stopping' });
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers.connection).toBe('close');
    expect(openApiAnswerErrors(document, '/commands', 'post', refused.body, 503)).toEqual([]);
    await http.get('/customers/ada').expect(503);

    const health = await http.get('/health').expect(503);
    expect(health.body.status).toBe('stopping');
    expect(openApiAnswerErrors(document, '/health', 'get', health.body, 503)).toEqual([]);
    expect((await http.get('/metrics').expect(200)).text).toContain('clientele_');

    expect(await store.headPosition()).toBe(head);
    release();
    await closing;
    rmSync(engine.dir, { recursive: true, force: true });
    engine = undefined;
  });
});
