import { DuplicateEventIdError, GENESIS_HASH, WrongExpectedRevisionError, type NewEvent, type StoredEvent } from '../index';
import { decide, sealCopyRows, sealRows } from './postgres.event-store';

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
    const before = decide({ streamId: 's', events: [event('a'), event('b')], expected: 'no_stream' }, log, at);

    // when the next append in the batch expects revision 1, and the batch is sealed
    const outcome = decide({ streamId: 's', events: [event('c')], expected: 1 }, log, at);
    const fresh = [before, outcome].flatMap((o) => (o.ok ? o.fresh : []));
    const sealed = sealRows(fresh, 0, fresh.length, GENESIS_HASH);

    // then it lands at revision 2, position 3, linked to the previous hash, which links to genesis
    expect(outcome.ok && outcome.result.events.map((e) => [e.revision, e.position])).toEqual([[2, 3]]);
    expect(outcome.ok && outcome.result.events[0]!.prevHash).toBe(log.byId.get('b')!.hash);
    expect(log.byId.get('a')!.prevHash).toBe(GENESIS_HASH);
    expect(sealed.lastHash).toBe(log.byId.get('c')!.hash);
  });

  it('seals a batch in pieces to the same hashes and rows as in one go', () => {
    // given forty accepted events, decided twice the same way
    const decided = () => {
      const log = emptyLog();
      const outcome = decide({ streamId: 's', events: Array.from({ length: 40 }, (_, i) => event(`e${i}`, { n: i })), expected: 'any' }, log, at);
      return outcome.ok ? outcome.fresh : [];
    };
    const whole = decided();
    const pieces = decided();

    // when one copy is sealed at once and the other seven events at a time, each piece after the last hash
    const once = sealRows(whole, 0, whole.length, GENESIS_HASH);
    let prev = GENESIS_HASH;
    const rows: unknown[] = [];
    for (let from = 0; from < pieces.length; from += 7) {
      const piece = sealRows(pieces, from, Math.min(from + 7, pieces.length), prev);
      rows.push(...(JSON.parse(piece.rows) as unknown[]));
      prev = piece.lastHash;
    }

    // then the hashes, the rows and the last hash agree
    expect(pieces.map((e) => e.hash)).toEqual(whole.map((e) => e.hash));
    expect(rows).toEqual(JSON.parse(once.rows));
    expect(prev).toBe(once.lastHash);
    expect(new Set(whole.map((e) => e.hash)).size).toBe(40);
  });

  it('seals COPY lines to the same hashes, one line per event, with the text and JSON COPY would misread escaped', () => {
    // given the same awkward append decided twice: tabs, newlines, carriage returns and backslashes
    // in the stream id, the ids and the type, and escapes in the data
    const awkward = (): StoredEvent[] => {
      const log = emptyLog();
      const events: NewEvent[] = [
        { ...event('id\t1'), type: 'Note\nRecorded\r', data: { text: 'a\\b "c"\nd\te\u2028 😀' } },
        { ...event('id\\2'), data: { path: 'C:\\dir\\file' } },
      ];
      const outcome = decide({ streamId: 'campaign\t1\\x', events, expected: 'any' }, log, at);
      return outcome.ok ? outcome.fresh : [];
    };
    const asJson = awkward();
    const asCopy = awkward();

    // when one is sealed as JSON rows and the other as COPY lines
    const json = sealRows(asJson, 0, asJson.length, GENESIS_HASH);
    const copy = sealCopyRows(asCopy, 0, asCopy.length, GENESIS_HASH);

    // then the chain is the same, and each line holds ten columns that COPY's text format reads back as the values
    expect(asCopy.map((e) => e.hash)).toEqual(asJson.map((e) => e.hash));
    expect(copy.lastHash).toBe(json.lastHash);
    const lines = copy.rows.split('\n');
    expect(lines.pop()).toBe('');
    const unescape = (field: string): string =>
      field.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', r: '\r' })[c] ?? c);
    const columns = lines.map((line) => line.split('\t').map(unescape));
    const rows = JSON.parse(json.rows) as Array<Record<string, unknown>>;
    expect(columns).toEqual(
      rows.map((r) => [String(r.p), r.s, String(r.r), r.i, r.t, JSON.stringify(r.d), JSON.stringify(r.m), r.a, r.h, r.v]),
    );
  });

  it('refuses to write a text value with a lone surrogate as a COPY line, which UTF-8 cannot carry', () => {
    const log = emptyLog();
    const outcome = decide({ streamId: 's\ud800', events: [event('a')], expected: 'any' }, log, at);
    const fresh = outcome.ok ? outcome.fresh : [];
    expect(() => sealCopyRows(fresh, 0, fresh.length, GENESIS_HASH)).toThrow(/lone surrogate/);
    const paired = decide({ streamId: 's😀', events: [event('b')], expected: 'any' }, emptyLog(), at);
    const pairedFresh = paired.ok ? paired.fresh : [];
    expect(sealCopyRows(pairedFresh, 0, 1, GENESIS_HASH).rows).toContain('\ts😀\t');
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
    expect(retry).toEqual({ ok: true, result: { ...(first.ok && first.result), duplicate: true }, fresh: [] });
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
