import type { CommandEnvelope } from '../command-sink';
import { deterministicId } from '@clientele/generator';
import { listLines, NOT_UTF8, type ImportItem, type LineError, type NumberedLine } from './import-item';

/**
 * CDNOW purchase histories (see docs/cli.md, "CDNOW mapping").
 *
 * - `merge` (default): the rows of one customer on one day are one order with one line per row, as
 *   the repeat-buying literature treats them; orderId `cdnow-<id>-<YYYYMMDD>`.
 * - `separate`: every row is its own order; orderId `cdnow-<id>-<YYYYMMDD>-<k>`, k counting the
 *   rows of that customer and day from 1.
 *
 * Each customer's first row also yields a `RegisterProspect` (source `cdnow`), so acquisition is
 * known rather than implicit. Ids derive from the data only, never from line numbers, so the master
 * file and the 1/10 sample map the same customer to the same commands.
 */
export type SameDayPolicy = 'merge' | 'separate';

export interface CdnowOptions {
  sameDay: SameDayPolicy;
}

/**
 * The policy an order id was made under, told by its shape: `cdnow-<id>-<YYYYMMDD>` (merge) or
 * `cdnow-<id>-<YYYYMMDD>-<k>` (separate); undefined for any other order id.
 */
export const sameDayPolicyOf = (orderId: string): SameDayPolicy | undefined =>
  /^cdnow-\d+-\d{8}$/.test(orderId) ? 'merge' : /^cdnow-\d+-\d{8}-\d+$/.test(orderId) ? 'separate' : undefined;

/**
 * The ids of the first `limit` customers the file registers, in file order. It stops reading there,
 * or after `100 × limit` items (a file of mostly refused rows is not read twice to its end).
 */
export const firstCustomers = async (lines: AsyncIterable<NumberedLine>, limit: number): Promise<string[]> => {
  const customers: string[] = [];
  let items = 0;
  if (limit < 1) return customers;
  // the policy does not change who is registered
  for await (const item of readCdnowCommands(lines, { sameDay: 'merge' })) {
    if (++items > 100 * limit) break;
    if (item.kind !== 'command') continue;
    const command = item.input as CommandEnvelope;
    if (command.type !== 'RegisterProspect') continue;
    customers.push((command.data as { customerId: string }).customerId);
    if (customers.length >= limit) break;
  }
  return customers;
};

interface Layout {
  columns: number;
  id: number;
  date: number;
  cds: number;
  value: number;
}

interface Row {
  line: number;
  customerId: string;
  date: string;
  occurredAt: string;
  cds: number;
  cents: number;
}

export interface CdnowLine {
  sku: 'cd';
  category: 'music';
  quantity: number;
  unitPriceMinor: number;
  unitCostMinor: number;
}

const MASTER: Layout = { columns: 4, id: 0, date: 1, cds: 2, value: 3 };

/**
 * The sample file has two id columns. Its README lists the sample id first, but the file holds the
 * master id (zero-padded to 5 digits for 23,570 customers) first and the sample id (4 digits) second;
 * the wider column is the master id, and the README order decides only when widths tie.
 */
const sampleLayout = (first: string, second: string): Layout =>
  first.length > second.length
    ? { columns: 5, id: 0, date: 2, cds: 3, value: 4 }
    : { columns: 5, id: 1, date: 2, cds: 3, value: 4 };

/**
 * Exact split of `cents` over `quantity` CDs: `r` CDs at `q + 1` and the rest at `q`, where
 * cents = q * quantity + r. The order total equals the dollar value to the cent and the quantity is
 * kept; one line when the value divides evenly.
 */
export const splitIntoLines = (cents: number, quantity: number): CdnowLine[] => {
  const q = Math.floor(cents / quantity);
  const r = cents - q * quantity;
  const line = (n: number, price: number): CdnowLine => ({
    sku: 'cd',
    category: 'music',
    quantity: n,
    unitPriceMinor: price,
    // CDNOW records no cost: margin figures of imported orders equal their revenue
    unitCostMinor: 0,
  });
  if (r === 0) return [line(quantity, q)];
  const lines = [line(r, q + 1)];
  if (quantity - r > 0) lines.push(line(quantity - r, q));
  return lines;
};

const parseDate = (text: string): string | undefined => {
  if (!/^\d{8}$/.test(text)) return undefined;
  const y = Number(text.slice(0, 4));
  const m = Number(text.slice(4, 6));
  const d = Number(text.slice(6, 8));
  const at = new Date(Date.UTC(y, m - 1, d));
  if (at.getUTCFullYear() !== y || at.getUTCMonth() !== m - 1 || at.getUTCDate() !== d) return undefined;
  return at.toISOString();
};

type Parsed =
  | { ok: true; row: Row }
  | { ok: false; reason: string; errors: LineError[]; customerId?: string; date?: string };

/** The same words in the printed report as in `errors`: each column, what it expects and what it holds. */
const describeColumns = (errors: readonly LineError[]): string =>
  errors.map((error) => `${error.field}: expected ${error.expected}, found '${error.found ?? ''}'`).join('; ');

const HEADER = 'customer_id date number_of_cds dollar_value';

const parseRow = (line: number, tokens: string[], layout: Layout): Parsed => {
  if (tokens.length !== layout.columns) {
    return {
      ok: false,
      reason: `expected ${layout.columns} columns, found ${tokens.length}${commaHint(tokens)}`,
      errors: [{ field: 'columns', expected: `${layout.columns} separated by spaces or tabs (${layout.columns === 4 ? HEADER : `${HEADER} with a sample id`})`, found: String(tokens.length) }],
    };
  }
  const rawId = tokens[layout.id] ?? '';
  const rawDate = tokens[layout.date] ?? '';
  const rawCds = tokens[layout.cds] ?? '';
  const rawValue = tokens[layout.value] ?? '';
  // every column at fault at once, as the envelope validator names every field
  const errors: LineError[] = [];
  const idOk = /^\d+$/.test(rawId);
  if (!idOk) errors.push({ field: 'customer_id', expected: 'digits', found: rawId });
  const occurredAt = parseDate(rawDate);
  if (occurredAt === undefined) errors.push({ field: 'date', expected: 'a calendar date as YYYYMMDD', found: rawDate });
  if (!/^\d+$/.test(rawCds) || Number(rawCds) === 0 || !Number.isSafeInteger(Number(rawCds))) {
    errors.push({ field: 'number_of_cds', expected: 'a positive integer', found: rawCds });
  }
  const money = /^(\d+)(?:\.(\d{1,2}))?$/.exec(rawValue);
  const cents = money === null ? undefined : Number(money[1]) * 100 + Number((money[2] ?? '').padEnd(2, '0'));
  if (/^-\d+(\.\d+)?$/.test(rawValue)) errors.push({ field: 'dollar_value', expected: 'a non-negative amount', found: rawValue });
  else if (cents === undefined) errors.push({ field: 'dollar_value', expected: 'dollars with at most two decimals', found: rawValue });
  else if (!Number.isSafeInteger(cents)) errors.push({ field: 'dollar_value', expected: `at most ${MAX_DOLLARS} dollars`, found: rawValue });
  const customerId = idOk ? `cdnow-${BigInt(rawId).toString()}` : undefined;
  if (errors.length > 0 || customerId === undefined || occurredAt === undefined || cents === undefined) {
    // a row whose customer and day are readable still belongs to that day's order (see flush)
    const keyed = customerId !== undefined && occurredAt !== undefined ? { customerId, date: rawDate } : {};
    return { ok: false, ...keyed, reason: describeColumns(errors), errors };
  }
  return { ok: true, row: { line, customerId, date: rawDate, occurredAt, cds: Number(rawCds), cents } };
};

const MAX_DOLLARS = `${Math.floor(Number.MAX_SAFE_INTEGER / 100)}.${String(Number.MAX_SAFE_INTEGER % 100).padStart(2, '0')}`;

/**
 * Whether a file's first line that is not blank reads as CDNOW: its header (`customer_id …`), or a
 * row of 4 or 5 columns that this reader parses (the import tells formats apart by it).
 */
export const looksLikeCdnow = (line: string): boolean => {
  const trimmed = line.trim();
  if (/^customer_id\b/i.test(trimmed)) return true;
  const tokens = trimmed.split(/\s+/);
  const layout = tokens.length === 4 ? MASTER : tokens.length === 5 ? sampleLayout(tokens[0] ?? '', tokens[1] ?? '') : undefined;
  return layout !== undefined && parseRow(0, tokens, layout).ok;
};

// The id names the day too: a later file whose rows of a customer start on another day (the next
// month's export) registers them under another id, which the stored customer answers as nothing to
// record. Under one id for every file, that registration would be another command under a stored
// id, refused as command_id_reused.
const registerCommand = (row: Row): CommandEnvelope => ({
  type: 'RegisterProspect',
  commandId: deterministicId(`cdnow:RegisterProspect:${row.customerId}:${row.occurredAt}`),
  data: { customerId: row.customerId, source: 'cdnow', channel: 'web', occurredAt: row.occurredAt },
});

const purchaseCommand = (orderId: string, rows: readonly Row[]): CommandEnvelope => {
  const first = rows[0] as Row;
  return {
    type: 'RecordPurchase',
    commandId: deterministicId(`cdnow:RecordPurchase:${orderId}`),
    data: {
      customerId: first.customerId,
      orderId,
      lines: rows.flatMap((row) => splitIntoLines(row.cents, row.cds)),
      channel: 'web',
      occurredAt: first.occurredAt,
    },
  };
};

/**
 * How many refusals of other lines are held while a customer-day's rows are open. They are reported
 * with that day's rows, in line order, once a later row can no longer change the day's outcome;
 * beyond this many (a file that turns to garbage after a good row) the day is withheld, so memory
 * stays bounded.
 */
export const HELD_REFUSALS = 1000;

type Refusal = Extract<ImportItem, { kind: 'reject' }>;

/**
 * Streams CDNOW rows into commands, holding one customer-day of rows and the id of every customer
 * seen. Input must be grouped by customer and in date order within a customer, as CDNOW's files
 * are; a row whose date goes back for the same customer is refused rather than silently forming a
 * second order, and so is a row of a customer whose rows ended earlier in the file (its day's order
 * would have the id of one already made, and be taken for it). Items come out in line order.
 */
export async function* readCdnowCommands(
  lines: AsyncIterable<NumberedLine>,
  options: CdnowOptions,
): AsyncGenerator<ImportItem> {
  let layout: Layout | undefined;
  let sawContent = false;
  let registered: string | undefined;
  let group: Row[] = [];
  let groupRejects: Refusal[] = [];
  /** refusals of other lines read while the day's rows are open */
  let held: Refusal[] = [];
  let last: { customerId: string; date: string } | undefined;
  /** the day withheld because HELD_REFUSALS refused lines came among its rows: its later rows are withheld too */
  let interrupted: string | undefined;
  /** customers whose rows came before the current customer's: the line their last row was on */
  const ended = new Map<string, number>();
  let lastLine = 0;

  const interruptedReason = (key: { customerId: string; date: string }): string =>
    `order withheld: ${HELD_REFUSALS} refused lines came among the rows of ${key.customerId} on ${key.date}; fix them and import again`;

  function* flush(): Generator<ImportItem> {
    const out: ImportItem[] = [];
    const first = group[0];
    if (first !== undefined && groupRejects.length > 0) {
      // each line once: the refused rows say which order they hold back, its good rows which lines they wait for
      const merged = options.sameDay === 'merge';
      const order = merged ? `order ${first.customerId}-${first.date}` : `the orders of ${first.customerId} on ${first.date}`;
      const is = merged ? 'is' : 'are';
      const refused = groupRejects.map((r) => r.line);
      const withheld = group.map((row) => row.line);
      const waitFor = `${refused.length === 1 ? 'line' : 'lines'} ${listLines(refused)} of the same customer and day ${refused.length === 1 ? 'was' : 'were'} refused`;
      for (const row of group) {
        out.push({ kind: 'reject', line: row.line, reason: `order withheld: ${order} ${is} not imported because ${waitFor}`, withheldBy: refused });
      }
      groupRejects = groupRejects.map((r) => ({
        ...r,
        reason: `${r.reason} (so ${order} ${is} withheld: ${withheld.length === 1 ? 'line' : 'lines'} ${listLines(withheld)} not imported either)`,
        withholds: withheld,
      }));
    } else if (first !== undefined && interrupted !== undefined) {
      for (const row of group) out.push({ kind: 'reject', line: row.line, reason: interrupted });
    } else if (first !== undefined) {
      if (registered !== first.customerId) {
        registered = first.customerId;
        out.push({ kind: 'command', line: first.line, input: registerCommand(first) });
      }
      if (options.sameDay === 'merge') {
        const purchase = purchaseCommand(`${first.customerId}-${first.date}`, group);
        out.push(group.length > 1 ? { kind: 'command', line: first.line, input: purchase, rows: group.map((row) => row.line) } : { kind: 'command', line: first.line, input: purchase });
      } else {
        let k = 0;
        for (const row of group) {
          k += 1;
          out.push({ kind: 'command', line: row.line, input: purchaseCommand(`${row.customerId}-${row.date}-${k}`, [row]) });
        }
      }
    }
    out.push(...groupRejects, ...held);
    // stable: a customer's registration stays before the purchase of the same line
    out.sort((a, b) => a.line - b.line);
    yield* out;
    group = [];
    groupRejects = [];
    held = [];
  }

  /** A line refused on its own: held while the open day's rows may still come after it. */
  function* refuse(refusal: Refusal): Generator<ImportItem> {
    if (group.length === 0 && groupRejects.length === 0) {
      yield refusal;
      return;
    }
    held.push(refusal);
    if (held.length >= HELD_REFUSALS && last !== undefined) {
      interrupted = interruptedReason(last);
      yield* flush();
    }
  }

  for await (const { line, text, notUtf8 } of lines) {
    const trimmed = text.trim();
    if (trimmed === '') continue;
    if (notUtf8) {
      yield* refuse({ kind: 'reject', line, reason: NOT_UTF8 });
      continue;
    }
    const tokens = trimmed.split(/\s+/);
    if (layout === undefined) {
      if (!sawContent && /^[A-Za-z_]/.test(trimmed)) {
        sawContent = true;
        continue; // the optional header line
      }
      sawContent = true;
      if (tokens.length === 4) layout = MASTER;
      else if (tokens.length === 5) layout = sampleLayout(tokens[0] ?? '', tokens[1] ?? '');
      else {
        yield {
          kind: 'reject',
          line,
          reason: `expected 4 columns (${HEADER}) or 5 (with a sample id), found ${tokens.length}${commaHint(tokens)}`,
          errors: [{ field: 'columns', expected: `4 separated by spaces or tabs (${HEADER}), or 5 (with a sample id)`, found: String(tokens.length) }],
        };
        continue;
      }
    }
    const parsed = parseRow(line, tokens, layout);
    const key: { customerId: string; date: string } | undefined = parsed.ok
      ? parsed.row
      : parsed.customerId !== undefined && parsed.date !== undefined
        ? { customerId: parsed.customerId, date: parsed.date }
        : undefined;
    if (key === undefined) {
      // no customer and day to attach it to: refused on its own
      if (!parsed.ok) yield* refuse({ kind: 'reject', line, reason: parsed.reason, errors: parsed.errors });
      continue;
    }
    const endedAt = ended.get(key.customerId);
    if (endedAt !== undefined) {
      yield* refuse({
        kind: 'reject',
        line,
        reason: `customer_id: rows of ${key.customerId} must be together (the file grouped by customer, as CDNOW's are); its earlier rows end on line ${endedAt}`,
        errors: [{ field: 'customer_id', expected: `the rows of ${key.customerId} together; its earlier rows end on line ${endedAt}`, found: tokens[layout.id] ?? '' }],
      });
      continue;
    }
    if (last !== undefined && last.customerId === key.customerId && key.date < last.date) {
      yield* refuse({
        kind: 'reject',
        line,
        reason: `date: rows of ${key.customerId} must be in date order, ${key.date} follows ${last.date}`,
        errors: [{ field: 'date', expected: `${last.date} or later (the rows of ${key.customerId} in date order)`, found: key.date }],
      });
      continue;
    }
    if (last === undefined || last.customerId !== key.customerId || last.date !== key.date) {
      yield* flush();
      interrupted = undefined;
      if (last !== undefined && last.customerId !== key.customerId) ended.set(last.customerId, lastLine);
      last = { customerId: key.customerId, date: key.date };
    } else if (interrupted !== undefined) {
      // the rest of a day already withheld
      lastLine = line;
      yield { kind: 'reject', line, ...(parsed.ok ? { reason: interrupted } : { reason: parsed.reason, errors: parsed.errors }) };
      continue;
    }
    lastLine = line;
    if (parsed.ok) group.push(parsed.row);
    else groupRejects.push({ kind: 'reject', line, reason: parsed.reason, errors: parsed.errors });
  }
  yield* flush();
}

/** A row of comma-separated values reads as one column: say what separates CDNOW's columns. */
function commaHint(tokens: readonly string[]): string {
  return tokens.some((t) => t.includes(',')) ? ' (columns are separated by spaces or tabs, not commas)' : '';
}
