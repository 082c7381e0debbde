import type { ImportItem, NumberedLine } from './import-item';
import { firstCustomers, HELD_REFUSALS, readCdnowCommands, sameDayPolicyOf, splitIntoLines, type SameDayPolicy } from './cdnow.reader';

async function* numbered(text: string): AsyncGenerator<NumberedLine> {
  let line = 0;
  for (const t of text.split('\n')) yield { line: ++line, text: t };
}

const read = async (text: string, sameDay: SameDayPolicy = 'merge'): Promise<ImportItem[]> => {
  const items: ImportItem[] = [];
  for await (const item of readCdnowCommands(numbered(text), { sameDay })) items.push(item);
  return items;
};

const commands = (items: ImportItem[]) =>
  items.flatMap((item) => (item.kind === 'command' ? [item.input as { type: string; commandId: string; data: Record<string, unknown> }] : []));
const rejects = (items: ImportItem[]) => items.flatMap((item) => (item.kind === 'reject' ? [item] : []));

describe('CDNOW reader', () => {
  describe('splitting a row into exact lines', () => {
    it.each([
      [1177, 1],
      [7700, 5],
      [2076, 2],
      [1000, 3],
      [1, 4],
      [0, 2],
      [9999, 7],
    ])('keeps %i cents over %i CDs exact, quantities summing to the CDs', (cents, cds) => {
      const lines = splitIntoLines(cents, cds);
      expect(lines.reduce((sum, l) => sum + l.quantity * l.unitPriceMinor, 0)).toBe(cents);
      expect(lines.reduce((sum, l) => sum + l.quantity, 0)).toBe(cds);
      expect(lines.every((l) => l.quantity > 0 && Number.isInteger(l.unitPriceMinor) && l.unitPriceMinor >= 0)).toBe(true);
      expect(lines.length).toBe(cents % cds === 0 ? 1 : 2);
    });
  });

  it('given the master layout with a header and CR LF, when read, then it registers each customer once and merges same-day rows', async () => {
    const items = await read(
      ' customer_id  date number_of_cds  dollar_value\r\n 00001 19970101  1   11.77\r\n 00002 19970112  1   12.00\r\n 00002 19970112  5   77.00\r\n 00002 19970301  3   10.00\r\n',
    );
    expect(rejects(items)).toEqual([]);
    const sent = commands(items);
    expect(sent.map((c) => c.type)).toEqual(['RegisterProspect', 'RecordPurchase', 'RegisterProspect', 'RecordPurchase', 'RecordPurchase']);
    expect(sent[0]?.data).toEqual({ customerId: 'cdnow-1', source: 'cdnow', channel: 'web', occurredAt: '1997-01-01T00:00:00.000Z' });
    const sameDay = sent[3]?.data as { orderId: string; lines: { quantity: number; unitPriceMinor: number }[] };
    expect(sameDay.orderId).toBe('cdnow-2-19970112');
    expect(sameDay.lines.reduce((s, l) => s + l.quantity * l.unitPriceMinor, 0)).toBe(1200 + 7700);
    expect(sameDay.lines.reduce((s, l) => s + l.quantity, 0)).toBe(6);
    const items10 = sent[4]?.data as { lines: { quantity: number; unitPriceMinor: number }[] };
    expect(items10.lines).toEqual([
      { sku: 'cd', category: 'music', quantity: 1, unitPriceMinor: 334, unitCostMinor: 0 },
      { sku: 'cd', category: 'music', quantity: 2, unitPriceMinor: 333, unitCostMinor: 0 },
    ]);
  });

  it('given same-day rows, when read with separate orders, then each row is its own order numbered within the day', async () => {
    const sent = commands(await read(' 00002 19970112  1   12.00\n 00002 19970112  5   77.00\n'));
    expect(sent.filter((c) => c.type === 'RecordPurchase').map((c) => c.data.orderId)).toEqual(['cdnow-2-19970112']);
    const separate = commands(await read(' 00002 19970112  1   12.00\n 00002 19970112  5   77.00\n', 'separate'));
    expect(separate.filter((c) => c.type === 'RecordPurchase').map((c) => c.data.orderId)).toEqual(['cdnow-2-19970112-1', 'cdnow-2-19970112-2']);
  });

  it('given the sample layout, when read, then the master id column is found and ids equal those of the master file', async () => {
    const master = commands(await read(' 00004 19970101  2   29.33\n 00004 19970118  2   29.73\n'));
    const sample = commands(await read(' 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n'));
    expect(sample).toEqual(master);
    expect(master[0]?.data.customerId).toBe('cdnow-4');
  });

  it('given bad rows, when read, then each is rejected with its line and the field, and the rest of its order is withheld', async () => {
    const items = await read(
      [
        ' 00001 19970101  1   11.77', // 1 fine
        ' 00002 1997013x  1   12.00', // 2 bad date text
        ' 00003 19970230  1   12.00', // 3 no such day
        ' 00004 19970101  -2  12.00', // 4 negative CDs
        ' 00005 19970101  2   -3.50', // 5 negative value
        ' 00006 19970101  two 3.50', // 6 non-numeric
        ' 00007 19970101  1   3.5.0', // 7 non-numeric value
        ' 00008 19970101  1', // 8 missing column
        ' 00009 19970101  1   5.00', // 9 fine, but same order as line 10
        ' 00009 19970101  1   abc', // 10 bad value
        ' 00010 19970105  1   5.00', // 11 fine
        ' 00010 19970104  1   5.00', // 12 goes back in time
      ].join('\n'),
    );
    const refused = rejects(items).sort((a, b) => a.line - b.line);
    expect(refused.map((r) => r.line)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 12]);
    const reason = (line: number) => refused.find((r) => r.line === line)?.reason ?? '';
    expect(reason(2)).toMatch(/^date: expected a calendar date as YYYYMMDD/);
    expect(reason(3)).toMatch(/^date: /);
    expect(reason(4)).toBe("number_of_cds: expected a positive integer, found '-2'");
    expect(reason(5)).toMatch(/^dollar_value: .*negative/);
    expect(reason(6)).toMatch(/^number_of_cds: expected a positive integer, found 'two'/);
    expect(reason(7)).toMatch(/^dollar_value: expected dollars/);
    expect(reason(8)).toBe('expected 4 columns, found 3');
    const commas = rejects(await read([' 00001 19970101  1   11.77', '00002,19970101,1,12.00'].join('\n')));
    expect(commas.map((r) => r.reason)).toEqual(['expected 4 columns, found 1 (columns are separated by spaces or tabs, not commas)']);
    expect(reason(9)).toBe('order withheld: order cdnow-9-19970101 is not imported because line 10 of the same customer and day was refused');
    expect(reason(12)).toMatch(/must be in date order/);
    const customers = commands(items).filter((c) => c.type === 'RegisterProspect').map((c) => c.data.customerId);
    expect(customers).toEqual(['cdnow-1', 'cdnow-10']);
  });

  it('given bad columns, when read, then each refusal carries errors naming every column at fault, what it expects and what it holds, as the printed reason does', async () => {
    const refused = rejects(
      await read(
        [
          ' 00001 19970101  1   11.77', // 1 fine
          ' 00002 19970230  0   1.234', // 2 three columns at fault
          ' 0000x 19970101  1   -5', // 3 no customer: refused on its own
          ' 00003 19970101  1', // 4 a column missing
          ' 00003 19970105  1   1.00', // 5
          ' 00003 19970104  1   1.00', // 6 back in time
          ' 00001 19970301  1   1.00', // 7 customer 1 again
        ].join('\n'),
      ),
    ).sort((a, b) => a.line - b.line);
    expect(refused.map((r) => [r.line, r.errors])).toEqual([
      [
        2,
        [
          { field: 'date', expected: 'a calendar date as YYYYMMDD', found: '19970230' },
          { field: 'number_of_cds', expected: 'a positive integer', found: '0' },
          { field: 'dollar_value', expected: 'dollars with at most two decimals', found: '1.234' },
        ],
      ],
      [
        3,
        [
          { field: 'customer_id', expected: 'digits', found: '0000x' },
          { field: 'dollar_value', expected: 'a non-negative amount', found: '-5' },
        ],
      ],
      [4, [{ field: 'columns', expected: '4 separated by spaces or tabs (customer_id date number_of_cds dollar_value)', found: '3' }]],
      [6, [{ field: 'date', expected: '19970105 or later (the rows of cdnow-3 in date order)', found: '19970104' }]],
      [7, [{ field: 'customer_id', expected: 'the rows of cdnow-1 together; its earlier rows end on line 1', found: '00001' }]],
    ]);
    expect(refused[0]?.reason).toBe(
      "date: expected a calendar date as YYYYMMDD, found '19970230'; number_of_cds: expected a positive integer, found '0'; dollar_value: expected dollars with at most two decimals, found '1.234'",
    );
    expect(refused[1]?.reason).toBe("customer_id: expected digits, found '0000x'; dollar_value: expected a non-negative amount, found '-5'");
  });

  it('given an order with refused rows, when read, then each line is refused once: the refused rows name the order they withhold and its lines, the withheld rows the lines they wait for', async () => {
    const text = [
      ' 00009 19970101  1   5.00', // 1 fine
      ' 00009 19970101  1   abc', // 2 bad value
      ' 00009 19970101  1   6.00', // 3 fine
      ' 00009 19970101  0   6.00', // 4 bad CDs
      ' 00010 19970101  1   7.00', // 5 another order, imported
    ].join('\n');
    const merged = rejects(await read(text));
    expect(merged.map((r) => r.line)).toEqual([1, 2, 3, 4]);
    expect(merged.map(({ line, reason, withheldBy, withholds }) => ({ line, reason, withheldBy, withholds }))).toEqual([
      { line: 1, reason: 'order withheld: order cdnow-9-19970101 is not imported because lines 2, 4 of the same customer and day were refused', withheldBy: [2, 4], withholds: undefined },
      {
        line: 2,
        reason: "dollar_value: expected dollars with at most two decimals, found 'abc' (so order cdnow-9-19970101 is withheld: lines 1, 3 not imported either)",
        withheldBy: undefined,
        withholds: [1, 3],
      },
      { line: 3, reason: 'order withheld: order cdnow-9-19970101 is not imported because lines 2, 4 of the same customer and day were refused', withheldBy: [2, 4], withholds: undefined },
      {
        line: 4,
        reason: "number_of_cds: expected a positive integer, found '0' (so order cdnow-9-19970101 is withheld: lines 1, 3 not imported either)",
        withheldBy: undefined,
        withholds: [1, 3],
      },
    ]);
    const separate = rejects(await read(text, 'separate'));
    expect(separate.map((r) => r.line)).toEqual([1, 2, 3, 4]);
    expect(separate[0]?.reason).toBe('order withheld: the orders of cdnow-9 on 19970101 are not imported because lines 2, 4 of the same customer and day were refused');
    expect(separate[1]?.reason).toMatch(/\(so the orders of cdnow-9 on 19970101 are withheld: lines 1, 3 not imported either\)$/);
    const alone = rejects(await read(' 00009 19970101  1   abc\n 00010 19970101  1   7.00'));
    expect(alone.map((r) => [r.reason, r.withholds])).toEqual([["dollar_value: expected dollars with at most two decimals, found 'abc'", undefined]]);
  });

  it('given a customer whose rows come back after another customer\'s, when read, then those rows are refused by name instead of being taken for an order already made', async () => {
    const items = await read(
      [
        ' 00002 19970301  2  10.00', // 1
        ' 00003 19970101  1   1.00', // 2
        ' 00002 19970215  1   3.00', // 3 customer 2 again, and earlier
        ' 00003 19970101  5  50.00', // 4 customer 3's day again: together with line 2 once line 3 is out
        ' 00004 19970101  1   2.00', // 5
        ' 00003 19970102  1   4.00', // 6 customer 3 after customer 4
      ].join('\n'),
    );
    const refused = rejects(items).sort((a, b) => a.line - b.line);
    expect(refused.map((r) => [r.line, r.reason])).toEqual([
      [3, "customer_id: rows of cdnow-2 must be together (the file grouped by customer, as CDNOW's are); its earlier rows end on line 1"],
      [6, "customer_id: rows of cdnow-3 must be together (the file grouped by customer, as CDNOW's are); its earlier rows end on line 4"],
    ]);
    const purchases = commands(items).filter((c) => c.type === 'RecordPurchase');
    const cds = (c: { data: Record<string, unknown> }) => (c.data.lines as { quantity: number }[]).reduce((n, l) => n + l.quantity, 0);
    expect(purchases.map((c) => [c.data.customerId, c.data.occurredAt, cds(c)])).toEqual([
      ['cdnow-2', '1997-03-01T00:00:00.000Z', 2],
      ['cdnow-3', '1997-01-01T00:00:00.000Z', 6],
      ['cdnow-4', '1997-01-01T00:00:00.000Z', 1],
    ]);
  });

  it('given refused lines among the rows of one customer-day, when read, then every item comes out in line order, with either policy', async () => {
    const text = [
      ' 00009 19970101  1   5.00', // 1 fine, withheld by line 4
      ' 0000x 19970101  1   5.00', // 2 no customer: refused on its own
      ' 00009 19970101  1   6.00', // 3 fine, withheld by line 4
      ' 00009 19970101  1   abc', // 4 bad value
      ' 00010 19970101  1   5.00', // 5 fine
      'not a row', // 6 refused on its own
      ' 00010 19970102  1   5.00', // 7 fine
      ' 00010 19970101  1   5.00', // 8 back in time
    ].join('\n');
    for (const sameDay of ['merge', 'separate'] as const) {
      const items = await read(text, sameDay);
      const order = items.map((item) => item.line);
      expect(order).toEqual([...order].sort((a, b) => a - b));
      expect(rejects(items).map((r) => r.line)).toEqual([1, 2, 3, 4, 6, 8]);
    }
  });

  it('given a customer-day whose rows are interrupted by more refused lines than are held, when read, then the day is withheld and items still come out in line order', async () => {
    const garbage = Array.from({ length: HELD_REFUSALS }, () => ' 0000x 19970101  1   5.00');
    const items = await read([' 00009 19970101  1   5.00', ...garbage, ' 00009 19970101  1   6.00', ' 00010 19970101  1   7.00'].join('\n'));
    const order = items.map((item) => item.line);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    const refused = rejects(items);
    expect(refused).toHaveLength(HELD_REFUSALS + 2);
    const withheld = `order withheld: ${HELD_REFUSALS} refused lines came among the rows of cdnow-9 on 19970101; fix them and import again`;
    expect(refused.filter((r) => r.reason === withheld).map((r) => r.line)).toEqual([1, HELD_REFUSALS + 2]);
    expect(commands(items).map((c) => c.data.customerId)).toEqual(['cdnow-10', 'cdnow-10']);
  });

  it('given a file, when its first customers are asked for, then they come in file order and the reading stops at the limit or after a hundred items a customer', async () => {
    const text = [' 00004 19970101  1   1.00', ' 00004 19970102  1   1.00', ' 00002 19970101  1   1.00', ' 00007 19970101  1   1.00'].join('\n');
    expect(await firstCustomers(numbered(text), 2)).toEqual(['cdnow-4', 'cdnow-2']);
    const garbage = Array.from({ length: 150 }, () => 'not a row').join('\n');
    expect(await firstCustomers(numbered(`${garbage}\n 00001 19970101  1   1.00`), 1)).toEqual([]);
    expect(await firstCustomers(numbered(`${garbage}\n 00001 19970101  1   1.00`), 2)).toEqual(['cdnow-1']);
  });

  it('given the order ids of either policy, then the policy is told from their shape', () => {
    expect(['cdnow-2-19970112', 'cdnow-2-19970112-1', 'cdnow-2-19970112-12', 'o-1', 'cdnow-x-19970112'].map(sameDayPolicyOf)).toEqual([
      'merge',
      'separate',
      'separate',
      undefined,
      undefined,
    ]);
  });

  it('given the same rows twice, when read, then the command ids are the same (a re-import is recognisable)', async () => {
    const text = ' 00001 19970101  1   11.77\n 00001 19970201  2   20.00\n';
    expect(commands(await read(text)).map((c) => c.commandId)).toEqual(commands(await read(text)).map((c) => c.commandId));
  });
});
