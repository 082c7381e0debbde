import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Kafka, logLevel } from 'kafkajs';
import request from 'supertest';
import { bootstrapEngine, EngineRuntime, loadEngineConfig } from '../apps/engine/src';
import { customerStream } from '@clientele/domain';
import { describeWithServer, freeLoopbackPort, KafkaServer, openApiAnswerErrors } from '@clientele/testing';

function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/** forwards `port` to the broker: the cluster "comes back" when this starts listening */
async function forward(port: number, broker: string): Promise<{ server: Server; sockets: Set<Socket> }> {
  const [host, brokerPort] = [broker.slice(0, broker.lastIndexOf(':')), Number(broker.slice(broker.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(brokerPort, host);
    upstream.unref();
    client.unref();
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, sockets };
}

/**
 * The engine started with CLIENTELE_KAFKA=on while its bootstrap broker refuses connections: the API
 * answers at once and /health says why Kafka is not running; once the broker can be reached, the
 * Kafka side starts on a later attempt and the relay publishes what was stored meanwhile.
 */
describeWithServer(KafkaServer, 'an engine whose Kafka cluster is down when it starts', (brokers) => {
  const prefix = `o${randomUUID().slice(0, 8)}.`;
  const saved: Record<string, string | undefined> = {};
  let dir: string;
  let app: NestExpressApplication | undefined;
  let proxy: { server: Server; sockets: Set<Socket> } | undefined;

  afterAll(async () => {
    await app?.close();
    // not awaited: close() waits for every connection, and one opened meanwhile must not hold the run
    proxy?.server.close();
    proxy?.server.unref();
    for (const s of proxy?.sockets ?? []) s.destroy();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTP while Kafka is down, reports it degraded, and publishes what was stored once the cluster is back', async () => {
    // nothing listens there yet: connections to it are refused
    const port = await freeLoopbackPort();
    const env = { KAFKA_BROKERS: `127.0.0.1:${port}`, KAFKA_TOPIC_PREFIX: prefix, KAFKA_CLIENT_ID: `outage-${prefix}`, KAFKA_TOPIC_PARTITIONS: '1', KAFKA_REPLICATION_FACTOR: '1' };
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    dir = mkdtempSync(join(tmpdir(), 'clientele-kafka-outage-'));
    const started = Date.now();
    app = await bootstrapEngine(loadEngineConfig({ ...process.env, CLIENTELE_DATA_DIR: dir, CLIENTELE_DURABILITY: 'normal', CLIENTELE_KAFKA: 'on', LOG_LEVEL: 'silent' }));
    // the engine is up without waiting for the cluster (kafkajs alone tries for about 10 s)
    expect(Date.now() - started).toBeLessThan(8_000);
    const http = request(app.getHttpServer());

    // commands are taken and stored while Kafka is down
    const registered = await http
      .post('/commands')
      .send({ type: 'RegisterProspect', commandId: 'r-kim', data: { customerId: 'kim', source: 'web', occurredAt: '2026-02-01T09:00:00Z' } })
      .expect(201);
    expect(registered.body.status).toBe('applied');

    // /health says Kafka is starting, why it failed, and that the process is degraded
    let health: { status: string; kafka: { starting?: boolean; attempts?: number; lastError?: string } } | undefined;
    for (const deadline = Date.now() + 30_000; ; ) {
      health = (await http.get('/health').expect(200)).body;
      if (health?.kafka.lastError !== undefined) break;
      if (Date.now() > deadline) throw new Error('no failed Kafka start reported within 30 s');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(health).toMatchObject({ status: 'degraded', kafka: { starting: true } });
    expect(health!.kafka.attempts).toBeGreaterThanOrEqual(1);
    expect(openApiAnswerErrors((await http.get('/docs-json').expect(200)).body, '/health', 'get', health)).toEqual([]);

    // the Kafka metrics exist while it is down: the relay's lag read from its checkpoint, so an alert on it can fire
    const down = (await http.get('/metrics').expect(200)).text;
    expect(metricValue(down, 'clientele_kafka_up')).toBe(0);
    expect(metricValue(down, 'clientele_kafka_relay_position')).toBe(0);
    expect(metricValue(down, 'clientele_kafka_relay_lag_events')).toBeGreaterThanOrEqual(1);
    expect(metricValue(down, 'clientele_kafka_relay_lag_events')).toBe(metricValue(down, 'clientele_kafka_relay_head_position'));
    expect(metricValue(down, 'clientele_kafka_ingest_processed_total')).toBe(0);

    // the cluster comes back: a later attempt starts the relay, which publishes the stored event
    proxy = await forward(port, brokers);
    await app.get(EngineRuntime).messagingStarted();
    const running = (await http.get('/health').expect(200)).body as { status: string; kafka: Record<string, unknown> };
    expect(running.status).toBe('ok');
    expect(Object.keys(running.kafka).sort()).toEqual(['ingest', 'profileSnapshots', 'relay']);

    const kafka = new Kafka({ clientId: 'outage-spec', brokers: [brokers], logLevel: logLevel.NOTHING });
    const tap = kafka.consumer({ groupId: `outage-tap-${prefix}`, maxWaitTimeInMs: 100 });
    const seen: string[] = [];
    try {
      await tap.connect();
      await tap.subscribe({ topics: [`${prefix}events`], fromBeginning: true });
      await tap.run({ eachMessage: async ({ message }) => void seen.push(message.key?.toString() ?? '') });
      for (const deadline = Date.now() + 30_000; !seen.includes(customerStream('kim')); ) {
        if (Date.now() > deadline) throw new Error(`the event stored while Kafka was down was not published; seen ${JSON.stringify(seen)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await tap.disconnect();
    }
    for (const deadline = Date.now() + 30_000; ; ) {
      const up = (await http.get('/metrics').expect(200)).text;
      expect(metricValue(up, 'clientele_kafka_up')).toBe(1);
      if (metricValue(up, 'clientele_kafka_relay_lag_events') === 0 && metricValue(up, 'clientele_kafka_relay_published_events_total')! >= 1) break;
      if (Date.now() > deadline) throw new Error(`the relay metrics did not show the stored events published: ${up.split('\n').filter((l) => l.startsWith('clientele_kafka_relay')).join('; ')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 90_000);

  it('gives up a start attempt on an unreachable cluster within seconds, so attempts follow each other and a stop does not wait for kafkajs\' own retries', async () => {
    const port = await freeLoopbackPort();
    const env = { KAFKA_BROKERS: `127.0.0.1:${port}`, KAFKA_TOPIC_PREFIX: prefix, KAFKA_CLIENT_ID: `outage-stop-${prefix}` };
    for (const [k, v] of Object.entries(env)) {
      if (!(k in saved)) saved[k] = process.env[k];
      process.env[k] = v;
    }
    const stopDir = mkdtempSync(join(tmpdir(), 'clientele-kafka-outage-stop-'));
    let engine: NestExpressApplication | undefined;
    try {
      engine = await bootstrapEngine(loadEngineConfig({ ...process.env, CLIENTELE_DATA_DIR: stopDir, CLIENTELE_DURABILITY: 'normal', CLIENTELE_KAFKA: 'on', LOG_LEVEL: 'silent' }));
      const http = request(engine.getHttpServer());
      // the first attempt fails and the second begins 1 s later; kafkajs' own retries alone would
      // hold the first attempt for about 10 s
      const started = Date.now();
      for (;;) {
        const kafka = (await http.get('/health').expect(200)).body.kafka as { attempts?: number };
        if ((kafka.attempts ?? 0) >= 2) break;
        if (Date.now() - started > 8_000) throw new Error(`still at attempt ${kafka.attempts} after 8 s`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const stopping = Date.now();
      await engine.close();
      engine = undefined;
      expect(Date.now() - stopping).toBeLessThan(5_000);
    } finally {
      await engine?.close();
      rmSync(stopDir, { recursive: true, force: true });
    }
  }, 60_000);
});
