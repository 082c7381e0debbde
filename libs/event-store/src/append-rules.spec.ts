import type { NewEvent } from './event-store.port';
import { revisionMatches, validateAppend } from './append-rules';

const event = (id: string): NewEvent => ({
  id,
  type: 'PurchaseRecorded',
  data: { n: 1 },
  metadata: { occurredAt: '2026-03-01T00:00:00.000Z', schemaVersion: 1 },
});

describe('expected revisions', () => {
  it.each([
    ['any', undefined, true],
    ['any', 3, true],
    ['no_stream', undefined, true],
    ['no_stream', 0, false],
    ['stream_exists', 0, true],
    ['stream_exists', undefined, false],
    [2, 2, true],
    [2, 3, false],
    [0, undefined, false],
  ] as const)('expected %s with last revision %s matches: %s', (expected, current, matches) => {
    expect(revisionMatches(expected, current)).toBe(matches);
  });
});

describe('append input', () => {
  it.each([
    ['', [event('a')], 'any', /streamId: expected a non-empty string/],
    ['s', [], 'any', /events: expected at least one event/],
    ['s', [event('a')], -1, /expectedRevision: expected/],
    ['s', [{ ...event('a'), type: '' }], 'any', /events\[0\]\.type/],
    ['s', [event('a'), { ...event('b'), data: [] as unknown as NewEvent['data'] }], 'any', /events\[1\]\.data/],
  ] as const)('refuses stream %j with a message naming the field', (streamId, events, expected, message) => {
    expect(() => validateAppend(streamId, [...events], expected)).toThrow(message);
  });
});
