import { DuplicateEventIdError, GENESIS_HASH, WrongExpectedRevisionError, type NewEvent, type StoredEvent } from '../index';
import { decide } from './postgres.event-store';

const event = (id: string, data: NewEvent['data'] = { n: 1 }): NewEvent => ({
  id,
  type: 'PurchaseRecorded',
  data,
  metadata: { occurredAt: '2026-03-01T00:00:00.000Z', schemaVersion: 1 },
});

const emptyLog = () => ({
  headPosition: 0,
  headHash: GENESIS_HASH,
  streamRevisions: new Map<string, number>(),
  byId: new Map<string, StoredEvent>(),
});

const at = '2026-03-02T00:00:00.000Z';

describe('deciding an append inside a group commit', () => {
  it('gives a second append in the same batch the positions and revision after the first', () => {
    // given a batch that already accepted one append to the stream
    const log = emptyLog();
    decide({ streamId: 's', events: [event('a'), event('b')], expected: 'no_stream' }, log, at);

    // when the next append in the batch expects revision 1
    const outcome = decide({ streamId: 's', events: [event('c')], expected: 1 }, log, at);

    // then it lands at revision 2, position 3, linked to the previous hash
    expect(outcome.ok && outcome.result.events.map((e) => [e.revision, e.position])).toEqual([[2, 3]]);
    expect(outcome.ok && outcome.result.events[0]!.prevHash).toBe(log.byId.get('b')!.hash);
  });

  it('refuses a wrong expected revision with the actual one and leaves the log state untouched', () => {
    const log = emptyLog();
    decide({ streamId: 's', events: [event('a')], expected: 'any' }, log, at);
    const outcome = decide({ streamId: 's', events: [event('b')], expected: 'no_stream' }, log, at);
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error).toEqual(new WrongExpectedRevisionError('s', 'no_stream', 0));
    expect(log.headPosition).toBe(1);
  });

  it('answers a retry in the same batch as a duplicate of the first, and a changed retry as an id clash', () => {
    const log = emptyLog();
    const first = decide({ streamId: 's', events: [event('a')], expected: 'no_stream' }, log, at);
    const retry = decide({ streamId: 's', events: [event('a')], expected: 'no_stream' }, log, at);
    const changed = decide({ streamId: 's', events: [event('a', { n: 2 })], expected: 'any' }, log, at);
    const elsewhere = decide({ streamId: 't', events: [event('a')], expected: 'any' }, log, at);
    expect(retry).toEqual({ ok: true, result: { ...(first.ok && first.result), duplicate: true }, rows: [] });
    expect(!changed.ok && changed.error).toBeInstanceOf(DuplicateEventIdError);
    expect(!elsewhere.ok && elsewhere.error).toBeInstanceOf(DuplicateEventIdError);
  });

  it('treats a retry that adds a new event to a stored one as an id clash, not a partial duplicate', () => {
    const log = emptyLog();
    decide({ streamId: 's', events: [event('a')], expected: 'any' }, log, at);
    const outcome = decide({ streamId: 's', events: [event('a'), event('b')], expected: 'any' }, log, at);
    expect(!outcome.ok && outcome.error).toEqual(new DuplicateEventIdError('a'));
  });
});
