import { validateCommandEnvelope } from '@clientele/contracts';

import type { CommandEnvelope, CommandSink, ItemResult } from '../command-sink';
import type { NumberedLine } from './import-item';
import { runImport, type RejectedLine } from './import.runner';
import { readNdjsonCommands } from './ndjson.reader';
import { readCdnowCommands } from './cdnow.reader';

/** Remembers command ids like the store does and refuses self-referrals like the domain does. */
class RecordingSink implements CommandSink {
  readonly batches: CommandEnvelope[][] = [];
  private readonly seen = new Set<string>();

  async executeBatch(envelopes: readonly CommandEnvelope[]): Promise<ItemResult[]> {
    this.batches.push([...envelopes]);
    return envelopes.map((envelope) => {
      const data = envelope.data as { customerId?: string; referredBy?: string };
      if (data.referredBy !== undefined && data.referredBy === data.customerId) {
        return { ok: false, commandId: envelope.commandId, code: 'self_referral', message: 'a customer cannot refer themselves', field: 'data.referredBy' };
      }
      const duplicate = this.seen.has(envelope.commandId);
      this.seen.add(envelope.commandId);
      return { ok: true, commandId: envelope.commandId, status: duplicate ? 'duplicate' : 'applied', eventCount: duplicate ? 0 : 1 };
    });
  }
}

async function* numbered(lines: string[]): AsyncGenerator<NumberedLine> {
  let line = 0;
  for (const text of lines) yield { line: ++line, text };
}

const register = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: 'RegisterProspect', commandId: `cmd-${id}`, data: { customerId: id, source: 'web', occurredAt: '2025-01-01T10:00:00Z', ...extra } });

const FILE = [
  register('a'), // 1
  '{"type": "RegisterProspect", ', // 2 broken JSON
  '', // 3 blank: ignored
  register('b', { occurredAt: 'yesterday' }), // 4 bad date
  JSON.stringify({ type: 'Teleport', commandId: 'cmd-x', data: {} }), // 5 unknown type
  register('c'), // 6
  register('d', { referredBy: 'd' }), // 7 refused by the domain
  register('e'), // 8
];

const importLines = async (lines: string[], sink: CommandSink, batchSize = 2) => {
  const rejected: RejectedLine[] = [];
  const summary = await runImport(readNdjsonCommands(numbered(lines)), {
    sink,
    validate: validateCommandEnvelope,
    batchSize,
    onReject: (r) => rejected.push(r),
  });
  return { summary, rejected };
};

describe('import of NDJSON command envelopes', () => {
  it('given bad lines, when imported, then only valid lines are sent, in batches, and every refusal names its line and reason', async () => {
    const sink = new RecordingSink();
    const { summary, rejected } = await importLines(FILE, sink);

    // lines 2 and 4 wait behind cmd-a for its answer: two waiting refusals send a batch of two early
    expect(sink.batches.map((batch) => batch.map((e) => e.commandId))).toEqual([['cmd-a'], ['cmd-c', 'cmd-d'], ['cmd-e']]);
    expect(rejected.map((r) => [r.line, r.stage])).toEqual([
      [2, 'parse'],
      [4, 'validation'],
      [5, 'validation'],
      [7, 'domain'],
    ]);
    expect(rejected[0]?.reason).toMatch(/^not valid JSON/);
    expect(rejected[1]?.errors).toEqual([{ field: 'data.occurredAt', expected: expect.any(String) }]);
    expect(rejected[2]?.reason).toMatch(/^type: expected/);
    expect(rejected[3]).toMatchObject({ code: 'self_referral', reason: 'data.referredBy: a customer cannot refer themselves', commandId: 'cmd-d' });
    expect(summary).toEqual({ lines: 8, sent: 4, stored: 3, duplicates: 0, noOps: 0, events: 3, rejected: 4 });
  });

  it('given a file already imported, when imported again, then everything is answered as already stored', async () => {
    const sink = new RecordingSink();
    await importLines(FILE, sink);
    const { summary } = await importLines(FILE, sink, 1000);
    expect(summary).toMatchObject({ sent: 4, stored: 0, duplicates: 3, events: 0 });
  });

  it('given a refusal by the domain and a later line refused before the batch is sent, when imported, then refusals are reported in line order', async () => {
    const sink = new RecordingSink();
    const { rejected } = await importLines([register('a'), register('d', { referredBy: 'd' }), 'not json', register('e'), '{}'], sink, 10);
    expect(rejected.map((r) => [r.line, r.stage])).toEqual([
      [2, 'domain'],
      [3, 'parse'],
      [5, 'validation'],
    ]);
  });

  it('given as many refused lines as a batch holds waiting behind a command, when imported, then the batch is sent early so refusals do not pile up', async () => {
    const sink = new RecordingSink();
    const { rejected } = await importLines([register('a'), 'x', 'y', register('b'), register('c')], sink, 2);
    expect(sink.batches.map((batch) => batch.map((e) => e.commandId))).toEqual([['cmd-a'], ['cmd-b', 'cmd-c']]);
    expect(rejected.map((r) => r.line)).toEqual([2, 3]);
  });

  it('given a CDNOW order withheld by a refused row, when imported, then the report holds each line once with its columns and the lines on either side', async () => {
    const rejected: RejectedLine[] = [];
    const rows = [' 00009 19970101  1   5.00', ' 00009 19970101  1   abc', ' 00010 19970101  1   7.00'];
    await runImport(readCdnowCommands(numbered(rows), { sameDay: 'merge' }), { sink: new RecordingSink(), validate: validateCommandEnvelope, batchSize: 10, onReject: (r) => rejected.push(r) });
    expect(rejected).toEqual([
      { line: 1, stage: 'parse', reason: expect.stringMatching(/^order withheld: order cdnow-9-19970101 /), withheldBy: [2] },
      {
        line: 2,
        stage: 'parse',
        reason: expect.stringMatching(/^dollar_value: /),
        errors: [{ field: 'dollar_value', expected: 'dollars with at most two decimals', found: 'abc' }],
        withholds: [1],
      },
    ]);
  });

  it('given a command the engine refuses as sent under a reused id, when imported, then it is refused naming the lines left out, and the rest counts as already stored', async () => {
    // a store that finds every command stored, the purchase of the merged order with other lines
    const reused = 'command id p was already used for a different command: data.lines differs from what it stored (PurchaseRecorded at position 2)';
    const sink: CommandSink = {
      executeBatch: async (envelopes) =>
        envelopes.map((e): ItemResult =>
          e.type === 'RecordPurchase'
            ? { ok: false, commandId: e.commandId, code: 'command_id_reused', message: reused }
            : { ok: true, commandId: e.commandId, status: 'duplicate', eventCount: 0 },
        ),
    };
    const rejected: RejectedLine[] = [];
    const rows = [' 00009 19970101  1   5.00', ' 00009 19970101  1   6.00', 'not a row'];
    const summary = await runImport(readCdnowCommands(numbered(rows), { sameDay: 'merge' }), { sink, validate: validateCommandEnvelope, batchSize: 10, onReject: (r) => rejected.push(r) });
    expect(rejected.map((r) => [r.line, r.stage, r.code])).toEqual([
      [1, 'domain', 'command_id_reused'],
      [3, 'parse', undefined],
    ]);
    expect(rejected[0]?.reason).toBe(`${reused}; lines 1, 2 were not applied (the log is append-only: the first version stays)`);
    expect(summary).toMatchObject({ sent: 2, duplicates: 1, stored: 0, rejected: 2 });
  });

  it('given a sink that loses an answer, then the import stops rather than misreporting', async () => {
    const lossy: CommandSink = { executeBatch: async () => [] };
    await expect(importLines([register('a')], lossy)).rejects.toThrow(/answered 0 results for 1 commands/);
  });

  it('given a nonsense batch size, then it names the option', async () => {
    await expect(importLines([register('a')], new RecordingSink(), 0)).rejects.toThrow(/^batch size: expected a positive integer/);
  });
});
