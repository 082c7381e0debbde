import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { EventStore, JsonObject, StoredEvent } from './event-store.port';
import { eventsOfLog, eventsOfStream, streamLength } from './read-in-batches';

/** What to export: the whole global log, or one stream (a customer's is `customer-{id}`). */
export type ExportScope = { kind: 'all' } | { kind: 'stream'; streamId: string };

export interface ExportProgress {
  exported: number;
  /** events the export will hold: the head (or stream length) when it started */
  total: number;
  position: number;
}

export interface ExportOptions {
  scope?: ExportScope;
  /** events read per page; the memory an export holds; default 1000 */
  batchSize?: number;
  /** called after every page */
  onProgress?: (progress: ExportProgress) => void;
}

export interface ExportSummary {
  events: number;
  firstPosition: number;
  lastPosition: number;
}

/** A writable that can tell when it wants no more for now (a file, stdout, a socket). */
export interface NdjsonSink {
  write(chunk: string): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * One event as one line. `occurredAt` is repeated from the metadata so a reader with `jq` sees
 * both times side by side; `readNdjsonExport` refuses a line where the two differ.
 */
export function toNdjsonLine(e: StoredEvent): string {
  return (
    JSON.stringify({
      id: e.id,
      streamId: e.streamId,
      revision: e.revision,
      position: e.position,
      occurredAt: e.metadata.occurredAt,
      recordedAt: e.recordedAt,
      type: e.type,
      data: e.data,
      metadata: e.metadata,
      hash: e.hash,
      prevHash: e.prevHash,
    }) + '\n'
  );
}

/**
 * Streams events as NDJSON in constant memory: one page is read, written, and the next page is read
 * only once the sink has taken the previous one. The export ends at the head as it was when it
 * started, so events appended meanwhile do not make it a moving target.
 *
 * Export the whole log from the store as stored (not through `PersonalDataEventStore`): the
 * personal fields stay encrypted and the chain verifies offline. A person's own copy of their data
 * is the stream read through the decorator; its hashes no longer match the decrypted content.
 */
export async function exportNdjson(
  store: Pick<EventStore, 'readAll' | 'readStream' | 'headPosition'>,
  sink: NdjsonSink,
  options: ExportOptions = {},
): Promise<ExportSummary> {
  const scope = options.scope ?? { kind: 'all' };
  const batchSize = options.batchSize ?? 1000;
  const total = scope.kind === 'all' ? await store.headPosition() : await streamLength(store, scope.streamId);
  const events = scope.kind === 'all' ? eventsOfLog(store, { batchSize }) : eventsOfStream(store, scope.streamId, { batchSize });

  const summary: ExportSummary = { events: 0, firstPosition: 0, lastPosition: 0 };
  let chunk = '';
  let inChunk = 0;
  const flush = async (): Promise<void> => {
    if (inChunk === 0) return;
    const more = sink.write(chunk);
    chunk = '';
    inChunk = 0;
    if (!more) await new Promise<void>((resolve) => sink.once('drain', resolve));
    options.onProgress?.({ exported: summary.events, total, position: summary.lastPosition });
  };

  for await (const e of events) {
    if (summary.events >= total) break;
    chunk += toNdjsonLine(e);
    inChunk += 1;
    summary.events += 1;
    if (summary.firstPosition === 0) summary.firstPosition = e.position;
    summary.lastPosition = e.position;
    if (inChunk >= batchSize) await flush();
  }
  await flush();
  if (summary.events === 0) options.onProgress?.({ exported: 0, total, position: 0 });
  return summary;
}

/** A line of an export file that is not an event as `exportNdjson` writes it. */
export class ExportFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file} line ${line}: ${message}`);
    this.name = 'ExportFormatError';
  }
}

const EXPORT_FIELDS: ReadonlySet<string> = new Set(['id', 'streamId', 'revision', 'position', 'occurredAt', 'recordedAt', 'type', 'data', 'metadata', 'hash', 'prevHash']);

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseLine(file: string, lineNo: number, text: string): StoredEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ExportFormatError(file, lineNo, `not JSON (${(error as Error).message})`);
  }
  const fail = (field: string, expected: string): never => {
    const got = isObject(parsed) ? JSON.stringify(parsed[field]) : JSON.stringify(parsed);
    throw new ExportFormatError(file, lineNo, `${field}: expected ${expected}, got ${got ?? 'nothing'}`);
  };
  if (!isObject(parsed)) return fail('line', 'a JSON object');
  const line = parsed;
  // the line is the event and nothing else: a field the export never writes is not covered by the hash
  for (const field of Object.keys(line)) {
    if (!EXPORT_FIELDS.has(field)) throw new ExportFormatError(file, lineNo, `${field}: not a field of an exported event (an export line holds ${[...EXPORT_FIELDS].join(', ')})`);
  }
  for (const field of ['id', 'streamId', 'type', 'recordedAt', 'hash', 'prevHash'] as const) {
    if (typeof line[field] !== 'string') fail(field, 'a string');
  }
  for (const field of ['revision', 'position'] as const) {
    const v = line[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(field, 'a non-negative integer');
  }
  if (!isObject(line.data)) fail('data', 'an object');
  if (!isObject(line.metadata)) fail('metadata', 'an object');
  const metadata = line.metadata as StoredEvent['metadata'];
  if (line.occurredAt !== undefined && line.occurredAt !== metadata.occurredAt) {
    fail('occurredAt', `the same value as metadata.occurredAt (${JSON.stringify(metadata.occurredAt)})`);
  }
  const event: StoredEvent = {
    id: line.id as string,
    streamId: line.streamId as string,
    revision: line.revision as number,
    position: line.position as number,
    recordedAt: line.recordedAt as string,
    type: line.type as string,
    data: line.data as JsonObject,
    metadata,
    hash: line.hash as string,
    prevHash: line.prevHash as string,
  };
  // A parser keeps the last of a duplicated key and reads `1e3` as 1000, so an edited line can parse
  // to the hashed event while showing a reader other values: only the text the export writes is taken.
  if (toNdjsonLine(event) !== `${text.endsWith('\r') ? text.slice(0, -1) : text}\n`) {
    throw new ExportFormatError(
      file,
      lineNo,
      'not as the export writes it (the line was edited: a key repeated, a number or string written another way, fields moved or spaced out)',
    );
  }
  return event;
}

/**
 * Reads an export back as stored events, line by line (constant memory), so an auditor can run
 * `verifyChain` (whole log) or `verifyStreamEvents` (one stream) on it without the store.
 * A line that is not an event throws `ExportFormatError` naming the line and the field, and so does
 * a line that is not exactly the text `toNdjsonLine` writes for the event it parses to (a trailing
 * `\r` aside): the hash covers the parsed values, so other text for them was edited by hand.
 */
export async function* readNdjsonExport(file: string): AsyncGenerator<StoredEvent> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const opened = once(input, 'open');
  // an unreadable file (missing, a directory) fails here with the system's message
  await Promise.race([opened, once(input, 'error').then(([error]) => Promise.reject(error as Error))]);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const text of lines) {
      lineNo += 1;
      if (text.trim() === '') continue;
      yield parseLine(file, lineNo, text);
    }
  } finally {
    lines.close();
    input.destroy();
  }
}
