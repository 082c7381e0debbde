/**
 * Cursors an integrator builds by hand rather than taking a page's `nextCursor`: they decode (the
 * base64url JSON `[order, position, customer id, filters]` a page gives) but hold nonsense for
 * the list they are given to. Every one must be refused naming `cursor` and what was expected, on
 * every read-model store, in the library and over HTTP alike.
 */
export interface HandBuiltCursor {
  /** what is wrong with it, for the test's report */
  why: string;
  /** the list it is given to: a profile list in an order, or the birthdays of `birthdayWindow` */
  list: { sort: 'customerId' | 'revenue' | 'orders' | 'lastPurchase'; direction: 'asc' | 'desc' } | 'birthdays';
  cursor: string;
  /** the refusal's `expected` */
  expected: RegExp;
}

const encode = (fields: unknown): string => Buffer.from(JSON.stringify(fields)).toString('base64url');

/**
 * The cases, for profile lists without filters and for the birthdays of the window that starts on
 * `birthdayWindow.from` (the list's `asOf`) and lasts `withinDays`; `customerId` is any id.
 */
export function handBuiltCursors(customerId: string, birthdayWindow: { from: string; withinDays: number }): HandBuiltCursor[] {
  const window = new URLSearchParams({ from: birthdayWindow.from, withinDays: String(birthdayWindow.withinDays) }).toString();
  const revenueDesc = { sort: 'revenue', direction: 'desc' } as const;
  const position = (what: string) => new RegExp(`^the nextCursor of a previous page \\(.+\\), whose position is ${what}`);
  const profileId = /^the nextCursor of a previous page, whose customer id is a non-empty string$/;
  const after = (days: number) => new Date(Date.parse(`${birthdayWindow.from}T00:00:00.000Z`) + days * 86_400_000).toISOString().slice(0, 10);
  return [
    { why: 'a revenue given as text', list: revenueDesc, cursor: encode(['revenue desc', 'abc', customerId, '']), expected: position('a revenue in minor units') },
    { why: 'a revenue given as numeric text', list: revenueDesc, cursor: encode(['revenue desc', '1500', customerId, '']), expected: position('a revenue in minor units') },
    { why: 'a revenue that is not an integer', list: revenueDesc, cursor: encode(['revenue desc', 12.5, customerId, '']), expected: position('a revenue in minor units') },
    { why: 'a negative revenue', list: { sort: 'revenue', direction: 'asc' }, cursor: encode(['revenue asc', -1, customerId, '']), expected: position('a revenue in minor units') },
    { why: 'a revenue past the integers JSON holds exactly', list: revenueDesc, cursor: encode(['revenue desc', 2 ** 60, customerId, '']), expected: position('a revenue in minor units') },
    { why: 'an order count given as text', list: { sort: 'orders', direction: 'asc' }, cursor: encode(['orders asc', 'two', customerId, '']), expected: position('an order count') },
    { why: 'a purchase time on a date that does not exist', list: { sort: 'lastPurchase', direction: 'desc' }, cursor: encode(['lastPurchase desc', '2025-02-30T10:00:00.000Z', customerId, '']), expected: position('a last purchase time') },
    { why: 'a purchase time given as a number', list: { sort: 'lastPurchase', direction: 'asc' }, cursor: encode(['lastPurchase asc', 20250101, customerId, '']), expected: position('a last purchase time') },
    { why: 'a purchase time that is no time', list: { sort: 'lastPurchase', direction: 'asc' }, cursor: encode(['lastPurchase asc', 'yesterday', customerId, '']), expected: position('a last purchase time') },
    { why: 'a customer id given as a number', list: { sort: 'customerId', direction: 'asc' }, cursor: encode(['customerId asc', 42, 42, '']), expected: profileId },
    { why: 'no customer id', list: revenueDesc, cursor: encode(['revenue desc', 100, null, '']), expected: profileId },
    { why: 'an empty customer id', list: revenueDesc, cursor: encode(['revenue desc', 100, '', '']), expected: profileId },
    { why: 'a customer id given as a list', list: revenueDesc, cursor: encode(['revenue desc', 100, [customerId], '']), expected: profileId },
    { why: 'an id order whose position is not the id', list: { sort: 'customerId', direction: 'desc' }, cursor: encode(['customerId desc', 7, customerId, '']), expected: position('the customer id again') },
    { why: 'two fields', list: revenueDesc, cursor: encode(['revenue desc', 100]), expected: /^the nextCursor of a previous page: 4 fields \(order, position, customer id, filters\)$/ },
    { why: 'five fields', list: revenueDesc, cursor: encode(['revenue desc', 100, customerId, '', 'more']), expected: /^the nextCursor of a previous page: 4 fields/ },
    { why: 'no fields', list: revenueDesc, cursor: encode([]), expected: /^the nextCursor of a previous page: 4 fields/ },
    { why: 'an object, not a list', list: revenueDesc, cursor: encode({ order: 'revenue desc', revenue: 100, customerId }), expected: /^the nextCursor of a previous page$/ },
    { why: 'an order given as a number', list: revenueDesc, cursor: encode([1, 100, customerId, '']), expected: /^the nextCursor of a previous page, whose first field is the order of its list \(revenue desc\)$/ },
    { why: 'filters given as an object', list: revenueDesc, cursor: encode(['revenue desc', 100, customerId, { stage: 'customer' }]), expected: /^the nextCursor of a previous page, whose last field is the filters of its list/ },
    { why: 'a birthday on a date that does not exist', list: 'birthdays', cursor: encode(['birthdays', '2026-02-30', customerId, window]), expected: position('a date YYYY-MM-DD that exists') },
    { why: 'a birthday given as a number', list: 'birthdays', cursor: encode(['birthdays', 20260210, customerId, window]), expected: position('a date YYYY-MM-DD that exists') },
    { why: 'a birthday given as a date-time', list: 'birthdays', cursor: encode(['birthdays', `${after(1)}T00:00:00Z`, customerId, window]), expected: position('a date YYYY-MM-DD that exists') },
    { why: 'a birthday after its window', list: 'birthdays', cursor: encode(['birthdays', after(birthdayWindow.withinDays + 1), customerId, window]), expected: position('a date of its window') },
    { why: 'a birthday before its window', list: 'birthdays', cursor: encode(['birthdays', after(-1), customerId, window]), expected: position('a date of its window') },
    { why: 'a birthday with no customer id', list: 'birthdays', cursor: encode(['birthdays', after(1), 7, window]), expected: profileId },
  ];
}
