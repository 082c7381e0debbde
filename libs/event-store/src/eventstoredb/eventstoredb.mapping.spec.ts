import { ANY, NO_STREAM, STREAM_EXISTS, WrongExpectedVersionError } from '@eventstore/db-client';
import { WrongExpectedRevisionError, type EventMetadata } from '../event-store.port';
import {
  eventTypeRegex,
  fromEsdbMetadata,
  fromEsdbStreamName,
  toEsdbExpectedRevision,
  toEsdbMetadata,
  toEsdbStreamName,
  translateError,
} from './eventstoredb.mapping';

describe('EventStoreDB stream names', () => {
  it.each([
    ['customer-42', 'Customer-42'],
    ['employee-e7', 'Employee-e7'],
    ['campaign-spring-2026', 'Campaign-spring-2026'],
    ['other', 'other'],
    ['customers-report', 'customers-report'],
  ])('maps %s to %s and back', (ours, theirs) => {
    expect(toEsdbStreamName(ours)).toBe(theirs);
    expect(fromEsdbStreamName(theirs)).toBe(ours);
  });

  it('refuses our stream id with a capitalised category, which would read back as another stream', () => {
    expect(() => toEsdbStreamName('Customer-42')).toThrow(/streamId: expected the lower-case category 'customer-'/);
  });
});

describe('EventStoreDB expected revisions', () => {
  it.each([
    ['any', ANY],
    ['no_stream', NO_STREAM],
    ['stream_exists', STREAM_EXISTS],
    [0, 0n],
    [41, 41n],
  ] as const)('maps %s to %s', (ours, theirs) => {
    expect(toEsdbExpectedRevision(ours)).toBe(theirs);
  });
});

describe('EventStoreDB errors', () => {
  it('turns a wrong expected version into our error with the actual revision', () => {
    // given EventStoreDB's conflict on a stream at revision 3
    const conflict = new WrongExpectedVersionError(undefined, { streamName: 'Customer-1', expected: 1n, current: 3n });

    // when translated, then it names our stream id, our expectation and the actual revision
    const translated = translateError(conflict, 'customer-1', 1);
    expect(translated).toBeInstanceOf(WrongExpectedRevisionError);
    expect(translated).toMatchObject({ streamId: 'customer-1', expected: 1, actual: 3 });
  });

  it('reports a missing stream as no_stream', () => {
    const conflict = new WrongExpectedVersionError(undefined, { streamName: 'Customer-1', expected: STREAM_EXISTS, current: NO_STREAM });
    expect(translateError(conflict, 'customer-1', 'stream_exists')).toMatchObject({ actual: 'no_stream' });
  });

  it('passes other errors through unchanged', () => {
    const other = new Error('connection refused');
    expect(translateError(other, 'customer-1', 'any')).toBe(other);
  });
});

describe('EventStoreDB metadata', () => {
  const chain = { recordedAt: '2026-04-01T08:00:00.000Z', hash: 'a'.repeat(64), prevHash: 'b'.repeat(64) };

  it('writes correlation and causation under the keys EventStoreDB projections read, and reads them back', () => {
    // given our metadata with every field
    const ours: EventMetadata = {
      occurredAt: '2026-03-31T23:59:00.000Z',
      schemaVersion: 2,
      commandId: 'cmd-1',
      correlationId: 'corr-1',
      causationId: 'evt-0',
      channel: 'kafka',
    };

    // when written, then EventStoreDB sees $correlationId/$causationId and the chain under $clientele
    const written = toEsdbMetadata(ours, chain);
    expect(written).toEqual({
      occurredAt: '2026-03-31T23:59:00.000Z',
      schemaVersion: 2,
      commandId: 'cmd-1',
      channel: 'kafka',
      $correlationId: 'corr-1',
      $causationId: 'evt-0',
      $clientele: chain,
    });

    // and reading it back gives our metadata and the chain
    expect(fromEsdbMetadata(JSON.parse(JSON.stringify(written)))).toEqual({ metadata: ours, chain });
  });

  it('reads an event written by someone else as having no chain', () => {
    expect(fromEsdbMetadata({ $correlationId: 'x' })).toEqual({ metadata: { correlationId: 'x' }, chain: undefined });
    expect(fromEsdbMetadata(undefined).chain).toBeUndefined();
  });
});

describe('EventStoreDB $all filter', () => {
  it('excludes system types by default and matches exactly the chosen types otherwise', () => {
    expect(new RegExp(eventTypeRegex(undefined)).test('$statsCollected')).toBe(false);
    expect(new RegExp(eventTypeRegex(undefined)).test('PurchaseRecorded')).toBe(true);
    const chosen = new RegExp(eventTypeRegex(new Set(['PurchaseRecorded', 'Type.v2'])));
    expect(chosen.test('PurchaseRecorded')).toBe(true);
    expect(chosen.test('Type.v2')).toBe(true);
    expect(chosen.test('TypeXv2')).toBe(false);
    expect(chosen.test('PurchaseRecordedLater')).toBe(false);
  });
});
