import { InvalidQueryError } from './query-errors';

/*
 * The cursors of the paginated lists (profiles, birthdays, top advocates): where the next page
 * starts, with the order and filters of the list it came from, checked before it reaches the SQL.
 */

/**
 * A page's position, with the order of the list it was taken from (`order`: the sort and direction
 * of a profile list, `birthdays` for birthdays, `top-advocates`): a cursor given to a list in another order would
 * point nowhere (a customer id compared with revenues), so it is refused instead of answering an
 * empty page.
 */
export function encodeCursor(order: string, value: string | number, id: string, filters: string): string {
  return Buffer.from(JSON.stringify([order, value, id, filters])).toString('base64url');
}

/**
 * A page from up to `limit + 1` rows in the list's order (the one past the page only says that
 * more follow): the first `limit` as items, and the cursor of the last of them when more follow.
 */
export function pageOf<R, T>(rows: readonly R[], limit: number, item: (row: R) => T, cursorAfter: (last: R) => string): { items: T[]; nextCursor?: string } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { items: page.map(item), ...(rows.length > limit && last !== undefined ? { nextCursor: cursorAfter(last) } : {}) };
}

/** what a cursor's position holds in a list's order, so that a cursor no page gave is refused before it reaches the SQL */
export interface CursorPosition {
  /** as the error says it: "a revenue in minor units (a non-negative integer)" */
  what: string;
  holds(value: unknown, id: string): boolean;
}

/** a non-negative safe integer: a count or an amount in minor units */
export const count = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** a value a cursor held, for the error's message: text and numbers as they were, anything else by its kind */
function shown(v: unknown): unknown {
  if (typeof v === 'string') return v.length > 40 ? `${v.slice(0, 40)}…` : v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return Array.isArray(v) ? 'a list' : typeof v;
}

/**
 * The cursor's position and customer id, when it came from the same list: the same order, and the
 * same filters (`filters`: the list's filter parameters, or a birthday window's first day and
 * width), so a page asked for with other filters never skips or repeats anyone unnoticed; and
 * when it holds what a page of that order gives (`position`: a revenue that is an integer, a date
 * that exists, a customer id that is text), so a hand-built one is refused naming what was
 * expected, not compared with the rows as something else (a text revenue sorts after every number
 * in SQLite, and PostgreSQL refuses it as a server error). A cursor made before it carried its
 * filters (three fields) is taken as it is; the third answer says whether it carried them.
 */
export function decodeCursor(cursor: string, order: string, filters: string, position: CursorPosition): [string | number, string, boolean] {
  const page = 'the nextCursor of a previous page';
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    // reported below
  }
  if (!Array.isArray(parsed)) throw new InvalidQueryError('cursor', page);
  if (parsed.length !== 4 && parsed.length !== 3) {
    throw new InvalidQueryError('cursor', `${page}: 4 fields (order, position, customer id, filters)`, `${parsed.length} fields`);
  }
  const [from, value, id, itsFilters] = parsed as unknown[];
  if (typeof from !== 'string') throw new InvalidQueryError('cursor', `${page}, whose first field is the order of its list (${order})`, shown(from));
  if (from !== order) {
    throw new InvalidQueryError('cursor', `${page} in the same order (this one came from a list in the order ${from}, not ${order})`);
  }
  if (parsed.length === 4) {
    if (typeof itsFilters !== 'string') throw new InvalidQueryError('cursor', `${page}, whose last field is the filters of its list (a query string)`, shown(itsFilters));
    if (itsFilters !== filters) {
      const named = (f: string) => (f === '' ? 'no filter' : f.replace(/&/g, ', '));
      throw new InvalidQueryError('cursor', `${page} with the same filters (this one came from a list with ${named(itsFilters)}, not ${named(filters)})`);
    }
  }
  if (typeof id !== 'string' || id.length === 0) throw new InvalidQueryError('cursor', `${page}, whose customer id is a non-empty string`, shown(id));
  if (!position.holds(value, id) || (typeof value !== 'string' && typeof value !== 'number')) {
    throw new InvalidQueryError('cursor', `${page} (${order}), whose position is ${position.what}`, shown(value));
  }
  return [value, id, parsed.length === 4];
}
