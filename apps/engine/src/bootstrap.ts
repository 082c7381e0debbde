import { isUtf8 } from 'node:buffer';
import { NestFactory } from '@nestjs/core';
import type { ModuleMetadata } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule, type SchemaObject } from '@nestjs/swagger';
import express, { type NextFunction, type Request, type Response } from 'express';
import { ClienteleMetrics, openStorage, type OpenedStorage } from '@clientele/application';
import type { EngineConfig } from './engine.config';
import { EngineLogger } from './engine.logger';
import { EngineModule } from './engine.module';
import { EngineRuntime } from './engine.runtime';
import { httpMetrics } from './http-metrics';
import { problem, sendProblem } from './problem-details';
import { COMMAND_COMPONENTS, RESPONSE_COMPONENTS } from './response-schemas';

export interface BootstrapOptions {
  /** more modules to compose into the engine (projections, Kafka relay, ingest) */
  imports?: ModuleMetadata['imports'];
  logger?: EngineLogger;
  /** an already opened storage (tests, demo seeding); default: opened from `config.storage` */
  storage?: OpenedStorage;
}

/**
 * Builds the engine application, initialised but not listening: `main.ts` calls `listen`, tests
 * hand it to supertest, and the demo bootstrap can seed data first.
 */
export async function bootstrapEngine(config: EngineConfig, options: BootstrapOptions = {}): Promise<NestExpressApplication> {
  const logger = options.logger ?? new EngineLogger({ level: config.logLevel, json: config.jsonLogs });
  const storage = options.storage ?? (await openStorage(config.storage));
  const app = await NestFactory.create<NestExpressApplication>(EngineModule.forRoot(config, storage, options.imports), {
    bodyParser: false,
    logger,
    bufferLogs: false,
  });
  app.disable('x-powered-by');
  // first, so that requests refused by the body parser below are counted too
  app.use(httpMetrics(app.get(ClienteleMetrics).registry));
  // a stopping engine takes no new work: it ends what is in progress, then closes the store
  const runtime = app.get(EngineRuntime);
  app.use((req: Request, res: Response, next: NextFunction) => (runtime.draining ? refuseWhileStopping(req, res, next) : next()));
  // without the http role the process answers only its operations routes (on CLIENTELE_OPS_PORT)
  if (!config.roles.http) app.use(operationsOnly);
  const batchBody = jsonBody(config.maxBatchBodyBytes);
  const singleBody = jsonBody(config.maxBodyBytes);
  // Batches may be large; everything else stays small so one request cannot hold much memory.
  app.use((req: Request, res: Response, next: NextFunction) =>
    (req.path === '/commands/batch' ? batchBody : singleBody)(req, res, next),
  );
  app.enableShutdownHooks();

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Clientele engine')
      .setDescription('Commands in (idempotent by commandId), customer state and history out. Errors are RFC 9457 problem details.')
      .setVersion('1')
      .build(),
  );
  document.components = {
    ...document.components,
    schemas: { ...document.components?.schemas, ...(RESPONSE_COMPONENTS as Record<string, SchemaObject>), ...(COMMAND_COMPONENTS as Record<string, SchemaObject>) },
  };
  SwaggerModule.setup('docs', app, asOpenApi30(document), { jsonDocumentUrl: 'docs-json' });

  await app.init();
  return app;
}

/**
 * What OpenAPI 3.0 refuses and our schemas write where JSON Schema allows it: an empty `required`
 * (an object whose fields are all optional) and an empty `servers` list. Strict validators
 * (swagger-cli, and code generators built on them) refused the whole document for these alone.
 */
function asOpenApi30<T extends object>(served: T): T {
  // a copy: the schemas in it are shared with the validators of the Kafka messages
  const document = structuredClone(served);
  const strip = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) strip(item);
    } else if (typeof value === 'object' && value !== null) {
      const record = value as Record<string, unknown>;
      if (Array.isArray(record.required) && record.required.length === 0) delete record.required;
      for (const key of Object.keys(record)) strip(record[key]);
    }
  };
  strip(document);
  const record = document as { servers?: unknown[] };
  if (Array.isArray(record.servers) && record.servers.length === 0) delete record.servers;
  return document;
}

const OPERATIONS_ROUTES = new Set(['/health', '/metrics']);

/** A process without the http role: its health and metrics, and a 404 naming why for the rest. */
function operationsOnly(req: Request, res: Response, next: NextFunction): void {
  if (OPERATIONS_ROUTES.has(req.path) && req.method === 'GET') return next();
  sendProblem(res, problem(404, 'not_found', 'Not found', `this process runs without the http role (CLIENTELE_ROLES): it answers GET /health and GET /metrics only`));
}

/**
 * While the engine stops: 503 for everything but its operations routes (/health answers 503
 * `stopping` itself, so a load balancer takes the process out), with `Connection: close` so a
 * client's retry opens a connection to another process.
 */
function refuseWhileStopping(req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Connection', 'close');
  if (OPERATIONS_ROUTES.has(req.path) && req.method === 'GET') return next();
  res.setHeader('Retry-After', '1');
  sendProblem(res, problem(503, 'stopping', 'Stopping', 'this engine process is stopping and takes no new work; send the request again (to another process, or to this one once it runs again)'));
}

const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * JSON bodies with a size limit, answering malformed or oversized bodies as problem details (the
 * parser runs before Nest's routing, so Nest's exception filter never sees its errors). A body of
 * another media type is refused with 415 naming the content type, not read as "no body": a JSON
 * command sent as text/plain would otherwise be answered as if it were not an object.
 */
function jsonBody(limit: number) {
  const parse = express.json({
    limit,
    strict: false,
    type: JSON_TYPES,
    // bytes that are not UTF-8 (Latin-1 sent without a charset) would be stored as U+FFFD for good
    verify: (_req, _res, buf) => {
      if (!isUtf8(buf)) throw Object.assign(new Error('the body is not UTF-8'), { type: 'charset.unsupported', status: 415 });
    },
  });
  const UTF8 = 'JSON in UTF-8 (no charset, or charset=utf-8)';
  const unsupported = (res: Response, field: 'content-type' | 'content-encoding', expected: string, detail: string): void =>
    sendProblem(res, problem(415, 'unsupported_media_type', 'Unsupported media type', detail, { errors: [{ field, expected }] }));
  return (req: Request, res: Response, next: NextFunction): void => {
    // req.is: null without a body, false with a body of another type
    const json = req.is(JSON_TYPES);
    if (json === false) {
      const given = req.headers['content-type'] ?? 'none';
      return unsupported(res, 'content-type', 'application/json', `the body must be JSON, sent with content-type application/json (got ${given})`);
    }
    if (json) {
      // JSON is UTF-8 (RFC 8259), and only the documented encodings are read: what is accepted is what is described
      const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
      if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') return unsupported(res, 'content-type', UTF8, `JSON is read in UTF-8 only (got charset ${charset})`);
      const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
      if (!['identity', 'gzip', 'deflate'].includes(encoding)) {
        return unsupported(res, 'content-encoding', 'identity, gzip or deflate', `the body's content-encoding must be identity, gzip or deflate (got ${encoding})`);
      }
    }
    parse(req, res, (error?: unknown) => {
      if (error === undefined || error === null) return next();
      const e = error as { type?: string; status?: number; message?: string };
      if (e.type === 'entity.too.large') {
        return sendProblem(res, problem(413, 'payload_too_large', 'Payload too large', `the body is larger than ${limit} bytes`));
      }
      if (e.type === 'entity.parse.failed') {
        return sendProblem(
          res,
          problem(400, 'malformed_json', 'Malformed JSON', `the body is not valid JSON: ${e.message ?? 'parse error'}`, {
            errors: [{ field: '', expected: 'a valid JSON document' }],
          }),
        );
      }
      // bytes that are not UTF-8, found by `verify`
      if (e.type === 'charset.unsupported') return unsupported(res, 'content-type', UTF8, e.message ?? 'the body is not UTF-8');
      const status = e.status && e.status >= 400 && e.status < 500 ? e.status : 400;
      return sendProblem(res, problem(status, 'unreadable_body', 'Unreadable body', e.message ?? 'the body could not be read'));
    });
  };
}
