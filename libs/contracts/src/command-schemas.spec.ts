import { validateCommandEnvelope } from './command-envelope';
import {
  COMMAND_DTOS,
  EMAIL_MAX_LENGTH,
  EXTERNAL_COMMAND_TYPES,
  FEEDBACK_SCORE_MAX,
  FEEDBACK_SCORE_MIN,
  LONG_TEXT_MAX,
  MAX_PURCHASE_LINES,
  PersonalDataDto,
  PHONE_MAX_LENGTH,
  PurchaseLineDto,
  SHORT_TEXT_MAX,
  type ExternalCommandType,
} from './command.dtos';
import { commandDataSchemaName, commandDataSchemas, PERSONAL_DATA_SCHEMA, PURCHASE_LINE_SCHEMA } from './command-schemas';
import { fieldRulesOf, MAX_RECORD_NAME_LENGTH, MAX_RECORD_NAMES } from './field-rules';
import { CommandEnvelopeSchema } from './schemas';
import { formatIssues, validateAgainstSchema, type JsonSchema } from './schema-validation';

const at = '2026-01-31T10:00:00.000Z';
const line = { sku: 'BOOK-1', category: 'books', quantity: 1, unitPriceMinor: 1500, unitCostMinor: 900 };
const personal = { name: 'Ann Example', email: 'ann@example.com', phone: '+44 20 7946 0000', birthday: '1990-05-17' };

/** one valid command of each type, every optional field present, so the schema of each is exercised */
const VALID: Record<ExternalCommandType, Record<string, unknown>> = {
  RegisterProspect: { customerId: 'ann', source: 'web', channel: 'email', campaign: 'spring', referredBy: 'bob', personal, occurredAt: at },
  RecordTouchpoint: { customerId: 'ann', channel: 'phone', direction: 'inbound', kind: 'question', note: 'asked about delivery', occurredAt: at },
  RecordPurchase: { customerId: 'ann', orderId: 'o-1', lines: [line], channel: 'web', location: 'london', campaign: 'spring', occurredAt: at },
  RecordFeedback: { customerId: 'ann', feedbackId: 'fb-1', score: 9, kind: 'praise', topic: 'delivery', employeeId: 'emp-1', comment: 'quick', occurredAt: at },
  ThankCustomer: { customerId: 'ann', gesture: 'coupon', reason: 'referral', valueMinor: 500, occurredAt: at },
  UpdateProfile: { customerId: 'ann', personal, preferences: { newsletter: 'weekly' }, consents: { email: true, sms: false }, occurredAt: at },
  MarkCustomerLost: { customerId: 'ann', reason: 'moved abroad', occurredAt: at },
  ChurnIfInactive: { customerId: 'ann', occurredAt: at },
  EraseCustomerPersonalData: { customerId: 'ann', requestedBy: 'dpo@example.com', occurredAt: at },
  HireEmployee: { employeeId: 'emp-1', name: 'Eve', role: 'support', occurredAt: at },
  RecordEmployeeLeft: { employeeId: 'emp-1', reason: 'retired', occurredAt: at },
  RecordCampaignSpend: { campaignId: 'spring', spendId: 'sp-1', channel: 'social', amountMinor: 120_000, occurredAt: at },
};

const envelope = (type: string, data: unknown, more: Record<string, unknown> = {}): Record<string, unknown> => ({ type, commandId: `cmd-${type}`, data, ...more });
const withData = (type: ExternalCommandType, change: Record<string, unknown>) => envelope(type, { ...VALID[type], ...change });
const without = (type: ExternalCommandType, field: string) => {
  const { [field]: _dropped, ...rest } = VALID[type];
  return envelope(type, rest);
};

/** `data.lines[0].quantity` → `/data/lines/0/quantity`, the JSON Pointer the schema names the same field by */
const pointer = (field: string): string => `/${field.replace(/\[(\d+)\]/g, '.$1').split('.').join('/')}`;

describe('the command data schemas', () => {
  it('list exactly the fields of each DTO, required where the DTO requires them', () => {
    const defs = commandDataSchemas('#/$defs/', 'json-schema');
    const shapes: [string, abstract new () => object][] = [
      ...EXTERNAL_COMMAND_TYPES.map((type): [string, abstract new () => object] => [commandDataSchemaName(type), COMMAND_DTOS[type]]),
      [PERSONAL_DATA_SCHEMA, PersonalDataDto],
      [PURCHASE_LINE_SCHEMA, PurchaseLineDto],
    ];
    for (const [name, dto] of shapes) {
      const rules = [...fieldRulesOf(dto)];
      const schema = defs[name] as JsonSchema;
      expect({ name, fields: Object.keys(schema.properties ?? {}).sort() }).toEqual({ name, fields: rules.map(([field]) => field).sort() });
      expect({ name, required: [...(schema.required ?? [])].sort() }).toEqual({ name, required: rules.filter(([, r]) => !r.optional).map(([field]) => field).sort() });
      expect({ name, additionalProperties: schema.additionalProperties }).toEqual({ name, additionalProperties: false });
    }
    expect(Object.keys(defs).sort()).toEqual([...shapes.map(([name]) => name)].sort());
  });

  it('accept, as the engine does, a command of every type with every field, and each bound at its limit', () => {
    const atTheLimits = [
      ...EXTERNAL_COMMAND_TYPES.map((type) => envelope(type, VALID[type], { correlationId: 'conversation-1' })),
      withData('RecordPurchase', { lines: Array.from({ length: MAX_PURCHASE_LINES }, (_, i) => ({ ...line, sku: `sku-${i}` })) }),
      withData('RegisterProspect', { source: 's'.repeat(SHORT_TEXT_MAX), personal: { email: `${'a'.repeat(EMAIL_MAX_LENGTH - 12)}@example.com`, phone: '1'.repeat(PHONE_MAX_LENGTH) } }),
      withData('RecordTouchpoint', { note: 'n'.repeat(LONG_TEXT_MAX), occurredAt: '2026-01-31T11:00+01:00' }),
      withData('RecordFeedback', { score: FEEDBACK_SCORE_MIN }),
      withData('RecordFeedback', { score: FEEDBACK_SCORE_MAX, occurredAt: '2026-01-31T10:00:00.123456789Z' }),
      withData('UpdateProfile', { consents: Object.fromEntries(Array.from({ length: MAX_RECORD_NAMES }, (_, i) => [`c${i}`, true])) }),
      withData('UpdateProfile', { preferences: { ['p'.repeat(MAX_RECORD_NAME_LENGTH)]: 'x' } }),
      withData('ThankCustomer', { valueMinor: Number.MAX_SAFE_INTEGER }),
      withData('HireEmployee', { employeeId: `e${'9'.repeat(127)}` }),
      envelope('ChurnIfInactive', VALID.ChurnIfInactive, { commandId: 'c'.repeat(200) }),
    ];
    for (const command of atTheLimits) {
      const validated = validateCommandEnvelope(command);
      expect({ command: command.commandId, errors: validated.ok ? [] : validated.errors }).toEqual({ command: command.commandId, errors: [] });
      expect({ command: command.commandId, issues: formatIssues(validateAgainstSchema(CommandEnvelopeSchema, command)) }).toEqual({ command: command.commandId, issues: '' });
    }
  });

  it('claim no format in the OpenAPI document that a format-checking client would hold against a time the engine takes: a business time without seconds', () => {
    const schemas = commandDataSchemas('#/components/schemas/', 'openapi-3.0');
    const withoutSeconds = withData('RecordTouchpoint', { occurredAt: '2026-01-31T11:00Z' });
    expect(validateCommandEnvelope(withoutSeconds).ok).toBe(true);
    for (const type of EXTERNAL_COMMAND_TYPES) {
      const occurredAt = schemas[commandDataSchemaName(type)]?.properties?.['occurredAt'];
      // RFC 3339 date-time needs seconds
      expect({ type, format: occurredAt?.format }).toEqual({ type, format: undefined });
      expect(new RegExp(occurredAt?.pattern ?? '^$').test('2026-01-31T11:00Z')).toBe(true);
    }
  });

  // One invalid command per rule the schemas express. Each is refused by the engine's validator and
  // by the published schema, both naming the field: a rule changed on one side only fails here.
  const refused: [rule: string, command: Record<string, unknown>, field: string, schemaPath?: string][] = [
    ['unknown command type', envelope('HireSomeone', VALID.HireEmployee), 'type'],
    ['data of another type (RecordPurchase data as HireEmployee)', envelope('HireEmployee', VALID.RecordPurchase), 'data.employeeId'],
    ['data of another type: its fields unknown there', envelope('HireEmployee', VALID.RecordPurchase), 'data.orderId'],
    ['no data', { type: 'ChurnIfInactive', commandId: 'c-1' }, 'data'],
    ['data not an object', envelope('ChurnIfInactive', [VALID.ChurnIfInactive]), 'data'],
    ['unknown envelope field', envelope('ChurnIfInactive', VALID.ChurnIfInactive, { priority: 'high' }), 'priority'],
    ['commandId with a space', envelope('ChurnIfInactive', VALID.ChurnIfInactive, { commandId: 'cmd 1' }), 'commandId'],
    ['commandId too long', envelope('ChurnIfInactive', VALID.ChurnIfInactive, { commandId: 'c'.repeat(201) }), 'commandId'],
    ['empty correlationId', envelope('ChurnIfInactive', VALID.ChurnIfInactive, { correlationId: '' }), 'correlationId'],
    ['missing required field', without('RecordPurchase', 'orderId'), 'data.orderId'],
    ['missing business time', without('ChurnIfInactive', 'occurredAt'), 'data.occurredAt'],
    ['unknown data field', withData('RecordCampaignSpend', { currency: 'EUR' }), 'data.currency'],
    ['id of the wrong form', withData('RecordPurchase', { customerId: 'ann smith' }), 'data.customerId'],
    ['id not a string', withData('HireEmployee', { employeeId: 7 }), 'data.employeeId'],
    ['text too long', withData('RegisterProspect', { source: 's'.repeat(SHORT_TEXT_MAX + 1) }), 'data.source'],
    ['long text too long', withData('MarkCustomerLost', { reason: 'r'.repeat(LONG_TEXT_MAX + 1) }), 'data.reason'],
    ['blank text', withData('HireEmployee', { name: '   ' }), 'data.name'],
    ['empty text', withData('ThankCustomer', { gesture: '' }), 'data.gesture'],
    ['optional field null', withData('RecordPurchase', { channel: null }), 'data.channel'],
    ['business time without a zone', withData('ChurnIfInactive', { occurredAt: '2026-01-31T10:00:00' }), 'data.occurredAt'],
    ['business time not a date-time', withData('ChurnIfInactive', { occurredAt: '31/01/2026' }), 'data.occurredAt'],
    ['direction not one of the set', withData('RecordTouchpoint', { direction: 'sideways' }), 'data.direction'],
    ['feedback kind not one of the set', withData('RecordFeedback', { kind: 'rant' }), 'data.kind'],
    ['score above the scale', withData('RecordFeedback', { score: FEEDBACK_SCORE_MAX + 1 }), 'data.score'],
    ['score below the scale', withData('RecordFeedback', { score: FEEDBACK_SCORE_MIN - 1 }), 'data.score'],
    ['score not an integer', withData('RecordFeedback', { score: 7.5 }), 'data.score'],
    ['too many lines', withData('RecordPurchase', { lines: Array.from({ length: MAX_PURCHASE_LINES + 1 }, () => line) }), 'data.lines'],
    ['no lines', withData('RecordPurchase', { lines: [] }), 'data.lines'],
    ['lines not an array', withData('RecordPurchase', { lines: line }), 'data.lines'],
    ['a line not an object', withData('RecordPurchase', { lines: [line, 'BOOK-2'] }), 'data.lines[1]'],
    ['a line quantity of the wrong type', withData('RecordPurchase', { lines: [line, { ...line, quantity: '2' }] }), 'data.lines[1].quantity'],
    ['a line quantity of zero', withData('RecordPurchase', { lines: [{ ...line, quantity: 0 }] }), 'data.lines[0].quantity'],
    ['a negative unit price', withData('RecordPurchase', { lines: [{ ...line, unitPriceMinor: -1 }] }), 'data.lines[0].unitPriceMinor'],
    ['a fractional unit cost', withData('RecordPurchase', { lines: [{ ...line, unitCostMinor: 0.5 }] }), 'data.lines[0].unitCostMinor'],
    ['minor units beyond a safe integer', withData('RecordCampaignSpend', { amountMinor: Number.MAX_SAFE_INTEGER + 1 }), 'data.amountMinor'],
    ['a line without its category', withData('RecordPurchase', { lines: [{ sku: 'x', quantity: 1, unitPriceMinor: 1, unitCostMinor: 1 }] }), 'data.lines[0].category'],
    ['an unknown field in a line', withData('RecordPurchase', { lines: [{ ...line, colour: 'red' }] }), 'data.lines[0].colour'],
    ['personal data not an object', withData('RegisterProspect', { personal: 'Ann' }), 'data.personal'],
    ['unknown personal field', withData('UpdateProfile', { personal: { nickname: 'annie' } }), 'data.personal.nickname'],
    ['email without @', withData('RegisterProspect', { personal: { email: 'ann.example.com' } }), 'data.personal.email'],
    ['email too long', withData('RegisterProspect', { personal: { email: `${'a'.repeat(EMAIL_MAX_LENGTH)}@example.com` } }), 'data.personal.email'],
    ['phone too long', withData('UpdateProfile', { personal: { phone: '1'.repeat(PHONE_MAX_LENGTH + 1) } }), 'data.personal.phone'],
    ['birthday not an ISO date', withData('UpdateProfile', { personal: { birthday: '17/05/1990' } }), 'data.personal.birthday'],
    ['a consent not true or false', withData('UpdateProfile', { consents: { email: true, sms: 'yes' } }), 'data.consents.sms'],
    ['a preference not text', withData('UpdateProfile', { preferences: { newsletter: 42 } }), 'data.preferences.newsletter'],
    ['a preference too long', withData('UpdateProfile', { preferences: { newsletter: 'w'.repeat(LONG_TEXT_MAX + 1) } }), 'data.preferences.newsletter'],
    ['too many consents', withData('UpdateProfile', { consents: Object.fromEntries(Array.from({ length: MAX_RECORD_NAMES + 1 }, (_, i) => [`c${i}`, true])) }), 'data.consents'],
    // the schema names the map, as propertyNames errors do; the validator names the entry
    ['a preference name too long', withData('UpdateProfile', { preferences: { ['p'.repeat(MAX_RECORD_NAME_LENGTH + 1)]: 'x' } }), `data.preferences.${'p'.repeat(MAX_RECORD_NAME_LENGTH + 1)}`, '/data/preferences'],
    ['a negative gift value', withData('ThankCustomer', { valueMinor: -500 }), 'data.valueMinor'],
  ];

  it.each(refused)('refuse, as the engine does, %s', (_rule, command, field, schemaPath = pointer(field)) => {
    const validated = validateCommandEnvelope(command);
    expect(validated.ok ? [] : validated.errors.map((e) => e.field)).toContain(field);
    const issues = validateAgainstSchema(CommandEnvelopeSchema, command);
    expect(issues.map((i) => i.path)).toContain(schemaPath);
  });

  it('report a wrong field of a command once, at its path, not once per command type', () => {
    const issues = validateAgainstSchema(CommandEnvelopeSchema, withData('RecordTouchpoint', { direction: 'sideways' }));
    expect(issues).toEqual([{ path: '/data/direction', message: 'expected one of "inbound", "outbound", got "sideways"' }]);
  });
});
