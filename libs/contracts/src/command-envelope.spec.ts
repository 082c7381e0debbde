import { validateCommandEnvelope, type FieldError } from '@clientele/contracts';

const at = '2026-01-31T10:00:00.000Z';
const line = { sku: 'SKU-1', category: 'books', quantity: 2, unitPriceMinor: 1250, unitCostMinor: 800 };
const purchase = (data: Record<string, unknown> = {}) => ({
  type: 'RecordPurchase',
  commandId: 'cmd-1',
  data: { customerId: 'c-1', orderId: 'o-1', lines: [line], occurredAt: at, ...data },
});

function errorsOf(input: unknown): FieldError[] {
  const result = validateCommandEnvelope(input);
  if (result.ok) throw new Error(`expected rejection, got ${JSON.stringify(result.command)}`);
  return result.errors;
}
const fields = (input: unknown) => errorsOf(input).map((e) => e.field);

describe('validateCommandEnvelope', () => {
  describe('accepts', () => {
    it('a well-formed purchase, giving back the same data', () => {
      const result = validateCommandEnvelope({ ...purchase(), correlationId: 'corr-9' });
      expect(result).toEqual({ ok: true, command: { ...purchase(), correlationId: 'corr-9' } });
    });

    it('every external command type with its minimal data', () => {
      const minimal: Record<string, Record<string, unknown>> = {
        RegisterProspect: { customerId: 'c-1', source: 'web' },
        RecordTouchpoint: { customerId: 'c-1', channel: 'email', direction: 'outbound', kind: 'newsletter' },
        RecordPurchase: { customerId: 'c-1', orderId: 'o-1', lines: [line] },
        RecordFeedback: { customerId: 'c-1', feedbackId: 'f-1', score: 0, kind: 'complaint' },
        ThankCustomer: { customerId: 'c-1', gesture: 'coupon', reason: 'loyalty' },
        UpdateProfile: { customerId: 'c-1' },
        MarkCustomerLost: { customerId: 'c-1', reason: 'moved away' },
        ChurnIfInactive: { customerId: 'c-1' },
        EraseCustomerPersonalData: { customerId: 'c-1' },
        HireEmployee: { employeeId: 'e-1', name: 'Ann' },
        RecordEmployeeLeft: { employeeId: 'e-1' },
        RecordCampaignSpend: { campaignId: 'spring', spendId: 's-1', channel: 'social', amountMinor: 0 },
      };
      for (const [type, data] of Object.entries(minimal)) {
        const result = validateCommandEnvelope({ type, commandId: `cmd-${type}`, data: { ...data, occurredAt: at } });
        expect({ type, ok: result.ok }).toEqual({ type, ok: true });
      }
    });

    it('optional nested data, records and a time offset, stored as UTC', () => {
      const result = validateCommandEnvelope({
        type: 'UpdateProfile',
        commandId: 'cmd-2',
        data: {
          customerId: 'c-1',
          occurredAt: '2026-01-31T11:00:00+01:00',
          personal: { name: 'Ann', email: 'ann@example.com', birthday: '1990-05-17' },
          preferences: { newsletter: 'weekly' },
          consents: { email: true },
        },
      });
      expect(result.ok && result.command.data.occurredAt).toBe(at);
    });
  });

  describe('rejects the envelope', () => {
    it.each([null, 'text', 42, [purchase()]])('when it is not an object: %p', (input) => {
      expect(errorsOf(input)).toEqual([{ field: '', expected: expect.stringContaining('JSON object') }]);
    });

    it('naming the internal and unknown command types as not allowed', () => {
      for (const type of ['CreditReferral', 'ConvertReferral', 'DropTables', 7, undefined]) {
        const errors = errorsOf({ ...purchase(), type });
        expect(errors).toEqual([{ field: 'type', expected: expect.stringContaining("'RecordPurchase'") }]);
        expect(errors[0]?.expected).not.toContain('CreditReferral');
      }
    });

    it('with a missing or empty commandId, a bad correlationId, extra fields and non-object data', () => {
      const { commandId: _omit, ...withoutId } = purchase();
      expect(fields(withoutId)).toEqual(['commandId']);
      expect(fields({ ...purchase(), commandId: '' })).toEqual(['commandId']);
      expect(fields({ ...purchase(), commandId: 'has space' })).toEqual(['commandId']);
      expect(fields({ ...purchase(), correlationId: 5 })).toEqual(['correlationId']);
      expect(errorsOf({ ...purchase(), priority: 'high' })).toEqual([{ field: 'priority', expected: 'no such field (remove it)' }]);
      expect(fields({ ...purchase(), data: [] })).toEqual(['data']);
      expect(fields({ ...purchase(), data: null })).toEqual(['data']);
    });
  });

  describe('rejects data', () => {
    it('with missing required fields, each named', () => {
      expect(fields({ type: 'RecordPurchase', commandId: 'c', data: {} })).toEqual([
        'data.customerId',
        'data.lines',
        'data.occurredAt',
        'data.orderId',
      ]);
    });

    it('with unknown fields at any depth', () => {
      const input = purchase({ discount: 5, lines: [{ ...line, colour: 'red' }] });
      expect(errorsOf(input)).toEqual([
        { field: 'data.discount', expected: 'no such field (remove it)' },
        { field: 'data.lines[0].colour', expected: 'no such field (remove it)' },
      ]);
    });

    it('with money that is negative, fractional or a string, naming the array index', () => {
      const input = purchase({
        lines: [line, { ...line, unitPriceMinor: -1 }, { ...line, unitCostMinor: 1.5 }, { ...line, unitPriceMinor: '12' }],
      });
      expect(errorsOf(input)).toEqual([
        { field: 'data.lines[1].unitPriceMinor', expected: 'a non-negative integer (minor units)' },
        { field: 'data.lines[2].unitCostMinor', expected: 'a non-negative integer (minor units)' },
        { field: 'data.lines[3].unitPriceMinor', expected: 'a non-negative integer (minor units)' },
      ]);
    });

    it('with lines that are empty, not an array, or hold non-objects', () => {
      expect(fields(purchase({ lines: [] }))).toEqual(['data.lines']);
      expect(fields(purchase({ lines: 'two books' }))).toEqual(['data.lines']);
      expect(fields(purchase({ lines: [line, 3, null] }))).toEqual(['data.lines[1]', 'data.lines[2]']);
      expect(fields(purchase({ lines: [{ ...line, quantity: 0 }] }))).toEqual(['data.lines[0].quantity']);
    });

    it.each([
      ['a date without time', '2026-01-31'],
      ['no time zone', '2026-01-31T10:00:00'],
      ['an impossible day', '2026-02-30T10:00:00Z'],
      ['an impossible hour', '2026-01-31T24:00:00Z'],
      ['a number', 1767225600000],
      ['free text', 'yesterday'],
    ])('with occurredAt as %s', (_label, occurredAt) => {
      expect(errorsOf(purchase({ occurredAt }))).toEqual([
        { field: 'data.occurredAt', expected: expect.stringContaining('ISO-8601 date-time') },
      ]);
    });

    it('with a feedback score outside 0..10 or not an integer, and an unknown kind', () => {
      const feedback = (d: Record<string, unknown>) => ({
        type: 'RecordFeedback',
        commandId: 'f',
        data: { customerId: 'c-1', feedbackId: 'f-1', score: 5, kind: 'praise', occurredAt: at, ...d },
      });
      for (const score of [-1, 11, 9.5, '9']) {
        expect(errorsOf(feedback({ score }))).toEqual([{ field: 'data.score', expected: 'an integer from 0 to 10' }]);
      }
      expect(errorsOf(feedback({ kind: 'rant' }))).toEqual([
        { field: 'data.kind', expected: "one of 'praise', 'complaint', 'suggestion'" },
      ]);
    });

    it('with nested personal data of the wrong shape', () => {
      const register = (personal: unknown) => ({
        type: 'RegisterProspect',
        commandId: 'r',
        data: { customerId: 'c-1', source: 'web', occurredAt: at, personal },
      });
      expect(fields(register('Ann'))).toEqual(['data.personal']);
      expect(fields(register({ birthday: '1990-02-30', email: 'not-an-email', nickname: 'A' }))).toEqual([
        'data.personal.birthday',
        'data.personal.email',
        'data.personal.nickname',
      ]);
    });

    it('with null for an optional field, blank text and ids carrying spaces', () => {
      const register = (d: Record<string, unknown>) => ({
        type: 'RegisterProspect',
        commandId: 'r',
        data: { customerId: 'c-1', source: 'web', occurredAt: at, ...d },
      });
      expect(fields(register({ channel: null }))).toEqual(['data.channel']);
      expect(fields(register({ source: '   ' }))).toEqual(['data.source']);
      expect(fields(register({ customerId: 'c 1', referredBy: '' }))).toEqual(['data.customerId', 'data.referredBy']);
    });

    describe('with preference and consent maps', () => {
      const update = (d: Record<string, unknown>) => ({
        type: 'UpdateProfile',
        commandId: 'u',
        data: { customerId: 'c-1', occurredAt: at, ...d },
      });

      it('holding the wrong value types, naming each entry at fault with what it must be', () => {
        expect(errorsOf(update({ preferences: { lang: 'en', newsletter: 1 }, consents: { email: 'yes', sms: true, 'post-mail': null } }))).toEqual([
          { field: 'data.consents.email', expected: 'true or false' },
          { field: 'data.consents["post-mail"]', expected: 'true or false' },
          { field: 'data.preferences.newsletter', expected: 'a non-empty string of at most 2000 characters' },
        ]);
      });

      it('with a name that is empty or too long, naming it', () => {
        const long = 'n'.repeat(101);
        expect(errorsOf(update({ consents: { '': true, [long]: false, ok: true } }))).toEqual([
          { field: 'data.consents[""]', expected: 'a name of 1-100 characters' },
          { field: `data.consents.${long}`, expected: 'a name of 1-100 characters' },
        ]);
      });

      it('that are no map, or hold too many names, naming the map', () => {
        const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`c${i}`, true]));
        expect(errorsOf(update({ consents: many, preferences: ['en'] }))).toEqual([
          { field: 'data.consents', expected: 'an object of at most 100 names to true or false' },
          { field: 'data.preferences', expected: 'an object of at most 100 names to strings (at most 2000 characters each)' },
        ]);
      });
    });

    describe('with text no store can hold (a NUL, an unpaired surrogate), naming the field at any depth', () => {
      const WELL_FORMED = 'text without NUL characters or unpaired surrogates';
      const register = (d: Record<string, unknown>) => ({
        type: 'RegisterProspect',
        commandId: 'r',
        data: { customerId: 'c-1', source: 'web', occurredAt: at, ...d },
      });

      it('a NUL in nested personal data, a purchase line and a free-text note', () => {
        expect(errorsOf(register({ personal: { name: 'Ann\u0000Smith' } }))).toEqual([
          { field: 'data.personal.name', expected: WELL_FORMED },
        ]);
        expect(errorsOf(purchase({ lines: [line, { ...line, category: '\u0000' }] }))).toEqual([
          { field: 'data.lines[1].category', expected: WELL_FORMED },
        ]);
        const touchpoint = {
          type: 'RecordTouchpoint',
          commandId: 't',
          data: { customerId: 'c-1', channel: 'phone', direction: 'inbound', kind: 'call', note: 'said \u0000', occurredAt: at },
        };
        expect(errorsOf(touchpoint)).toEqual([{ field: 'data.note', expected: WELL_FORMED }]);
      });

      it('a lone surrogate in an id: the command id, the correlation id, a customer id (named once)', () => {
        expect(errorsOf({ ...purchase(), commandId: 'cmd-\ud800' })).toEqual([{ field: 'commandId', expected: WELL_FORMED }]);
        expect(errorsOf({ ...purchase(), correlationId: '\udc00corr' })).toEqual([{ field: 'correlationId', expected: WELL_FORMED }]);
        expect(fields(purchase({ customerId: 'c-\ud83d' }))).toEqual(['data.customerId']);
      });

      it('halves of a pair in the wrong order, and in a map, by value and by name (escaped)', () => {
        const update = (d: Record<string, unknown>) => ({
          type: 'UpdateProfile',
          commandId: 'u',
          data: { customerId: 'c-1', occurredAt: at, ...d },
        });
        expect(errorsOf(update({ preferences: { newsletter: '\ude00\ud83d' } }))).toEqual([
          { field: 'data.preferences.newsletter', expected: WELL_FORMED },
        ]);
        expect(errorsOf(update({ consents: { 'e\u0000mail': true } }))).toEqual([
          { field: 'data.consents["e\\u0000mail"]', expected: 'names without NUL characters or unpaired surrogates' },
        ]);
      });

      it('once per field: not again for a field refused for its shape, nor below it', () => {
        const nested = (depth: number) => {
          let value: unknown = '\u0000';
          for (let i = 0; i < depth; i++) value = [value];
          return value;
        };
        const deep = nested(50);
        expect(errorsOf(purchase({ extra: deep, lines: ['\u0000'], orderId: deep, '\u0000': 1 }))).toEqual([
          { field: 'data.extra', expected: 'no such field (remove it)' },
          { field: 'data.lines[0]', expected: 'an object' },
          { field: 'data.orderId', expected: expect.stringContaining('an id') },
          // a name no store can hold is written escaped, as the text check writes it
          { field: 'data["\\u0000"]', expected: 'no such field (remove it)' },
        ]);
        // Data of an unknown type is not walked: it may be nested deeper than a walk's stack.
        expect(fields({ ...purchase(), type: 'Unknown', data: { note: nested(100_000) } })).toEqual(['type']);
      });

      it('but accepts a surrogate pair (an emoji) and other unicode anywhere', () => {
        const result = validateCommandEnvelope({
          ...register({ personal: { name: 'Zoë Ångström 日本語 😀', email: 'zoë@例え.jp' }, channel: '🛒 shop' }),
          commandId: 'cmd-😀',
        });
        expect(result.ok && result.command.data).toMatchObject({ personal: { name: 'Zoë Ångström 日本語 😀' }, channel: '🛒 shop' });
        expect(result.ok && result.command.commandId).toBe('cmd-😀');
      });
    });

    it('reporting envelope and data problems together', () => {
      expect(fields({ type: 'RecordPurchase', commandId: '', extra: 1, data: { ...purchase().data, orderId: 3 } })).toEqual([
        'extra',
        'commandId',
        'data.orderId',
      ]);
    });
  });
  describe('refuses what would hang or mislead the engine', () => {
    it('a body nested deeper than any command, naming where, instead of exhausting the validators (a 500)', () => {
      let deep: unknown = [];
      for (let i = 0; i < 3000; i++) deep = [deep];
      const errors = errorsOf(purchase({ lines: deep }));
      expect(errors).toEqual([{ field: expect.stringMatching(/^data\.lines(\[0\]){63}$/), expected: 'at most 64 levels of nesting below data' }]);
      const unknownDeep = errorsOf({ type: 'RegisterProspect', commandId: 'deep', data: { customerId: 'c-1', source: 'w', occurredAt: at, x: deep } });
      expect(unknownDeep[0]?.expected).toBe('at most 64 levels of nesting below data');
    });

    it('a field or a name called __proto__, which a copy would drop without a word', () => {
      const proto = JSON.parse(`{"type":"UpdateProfile","commandId":"p-1","data":{"customerId":"c-1","occurredAt":"${at}","preferences":{"__proto__":"x","constructor":"y"}}}`) as unknown;
      expect(errorsOf(proto)).toEqual([{ field: 'data.preferences.__proto__', expected: 'no field or name __proto__' }]);
      const top = JSON.parse(`{"type":"RegisterProspect","commandId":"p-2","data":{"customerId":"c-1","source":"w","occurredAt":"${at}","__proto__":{"x":1}}}`) as unknown;
      expect(fields(top)).toEqual(['data.__proto__']);
    });

    it('a business time in the future or before 1900, naming occurredAt and the range', () => {
      for (const occurredAt of ['2206-01-05T10:00:00Z', '9999-12-31T23:59:59Z', new Date(Date.now() + 2 * 86_400_000).toISOString(), '0001-01-01T00:00:00Z', '1899-12-31T23:59:59Z']) {
        expect(errorsOf(purchase({ occurredAt }))).toEqual([{ field: 'data.occurredAt', expected: expect.stringMatching(/^a business time from 1900-01-01 up to one day after now \(/) }]);
      }
      // a source whose clock runs a little ahead is still taken
      expect(validateCommandEnvelope(purchase({ occurredAt: new Date(Date.now() + 3_600_000).toISOString() })).ok).toBe(true);
      expect(validateCommandEnvelope(purchase({ occurredAt: '1900-01-01T00:00:00Z' })).ok).toBe(true);
    });
  });
});
