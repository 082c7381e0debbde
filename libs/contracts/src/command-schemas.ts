/**
 * JSON Schemas of the `data` of each command callers may send, so an integrator can generate a
 * client or check a command before sending it. They say what the DTOs' field rules say (command.dtos.ts,
 * field-rules.ts), with the same constants; what JSON Schema cannot say is in a `description`:
 *
 * - a business time must be a real instant from 1900-01-01 up to one day after the engine's clock
 *   (the pattern checks its form only, not that 2026-02-30 or 25:00 do not exist);
 * - a birthday must be a real calendar day (the pattern checks its form only);
 * - every string, and every name in a map, must be text without NUL characters or unpaired
 *   surrogates: a Unicode-mode pattern could say so, but a pattern engine without Unicode mode
 *   (several JSON Schema implementations) would then refuse every emoji;
 * - a business time may leave out its seconds (2026-01-31T10:00Z), which RFC 3339's date-time does
 *   not allow, so it is a pattern and not `format: date-time`;
 * - lengths are counted in UTF-16 code units, as the engine does, while JSON Schema counts code
 *   points: a text of characters outside the Basic Multilingual Plane can pass `maxLength` and
 *   still be refused as too long.
 *
 * So the schemas refuse nothing the engine accepts, and refuse by themselves most of what it refuses.
 * A spec holds the two together: generated commands pass both, and one invalid command per rule
 * expressed here is refused by both.
 */
import {
  EMAIL_MAX_LENGTH,
  EMAIL_PATTERN,
  EXTERNAL_COMMAND_TYPES,
  FEEDBACK_KINDS,
  FEEDBACK_SCORE_MAX,
  FEEDBACK_SCORE_MIN,
  LONG_TEXT_MAX,
  MAX_PURCHASE_LINES,
  PHONE_MAX_LENGTH,
  SHORT_TEXT_MAX,
  TOUCHPOINT_DIRECTIONS,
  type ExternalCommandType,
} from './command.dtos';
import { EXPECTED_KEY, KEY_PATTERN, MAX_KEY_LENGTH } from './command-envelope';
import { BUSINESS_TIME_RANGE, EXPECTED, ID_PATTERN, ISO_DATE, ISO_DATE_TIME, MAX_RECORD_NAME_LENGTH, MAX_RECORD_NAMES } from './field-rules';
import type { JsonSchema } from './schema-validation';

/**
 * Where the schemas go: the published JSON Schema (`$defs`, draft 2020-12), or an OpenAPI 3.0
 * document's components, which know neither `propertyNames` nor `const`, and where `format` is
 * what code generators read to pick a date type.
 */
export type CommandSchemaDialect = 'json-schema' | 'openapi-3.0';

/** the named schemas the data schemas share */
export const PERSONAL_DATA_SCHEMA = 'PersonalData';
export const PURCHASE_LINE_SCHEMA = 'PurchaseLine';

/** the name of a command type's data schema, e.g. RecordPurchaseData */
export const commandDataSchemaName = (type: ExternalCommandType): string => `${type}Data`;
/** the name of a command type's envelope schema, e.g. RecordPurchaseCommand */
export const commandSchemaName = (type: ExternalCommandType): string => `${type}Command`;

const WELL_FORMED = `${EXPECTED.wellFormedText}; lengths in UTF-16 code units`;

/**
 * The named schemas of command data: PersonalData, PurchaseLine and `<Type>Data` for each command
 * type, referring to each other as `${refBase}<Name>`.
 */
export function commandDataSchemas(refBase: string, dialect: CommandSchemaDialect): Record<string, JsonSchema> {
  const ref = (name: string): JsonSchema => ({ $ref: `${refBase}${name}` });
  const openApi = dialect === 'openapi-3.0';

  const text = (max: number = SHORT_TEXT_MAX): JsonSchema => ({
    type: 'string',
    minLength: 1,
    maxLength: max,
    // not only white space (the rule trims before it counts)
    pattern: '\\S',
    description: `${EXPECTED.text(max)}, not only white space; ${WELL_FORMED}`,
  });
  const id: JsonSchema = { type: 'string', pattern: ID_PATTERN.source, description: EXPECTED.id };
  const minorUnits: JsonSchema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: EXPECTED.minorUnits };
  const oneOf = (values: readonly string[]): JsonSchema => ({ type: 'string', enum: [...values] });
  // no `format: date-time`, in either dialect: RFC 3339 needs seconds, which the engine does not, so a
  // client or gateway that enforces formats would refuse 2026-01-31T10:00Z, a time the engine takes
  const occurredAt: JsonSchema = {
    type: 'string',
    pattern: ISO_DATE_TIME.source,
    description: `business time: ${EXPECTED.dateTime}, seconds optional; a real instant ${BUSINESS_TIME_RANGE} (the engine's clock), which this schema cannot check`,
  };
  /** a small map of names to values (RecordOf in field-rules.ts) */
  const recordOf = (values: JsonSchema, valuesExpected: string): JsonSchema => {
    const names = `names of 1-${MAX_RECORD_NAME_LENGTH} characters`;
    return {
      type: 'object',
      maxProperties: MAX_RECORD_NAMES,
      // OpenAPI 3.0 has no propertyNames: the bound on names is left to the description there
      ...(openApi ? {} : { propertyNames: { type: 'string', minLength: 1, maxLength: MAX_RECORD_NAME_LENGTH } }),
      additionalProperties: values,
      description: `at most ${MAX_RECORD_NAMES} ${names} to ${valuesExpected}`,
    };
  };
  /** a closed object: every property required but those named optional */
  const object = (description: string, properties: Record<string, JsonSchema>, ...optional: string[]): JsonSchema => ({
    type: 'object',
    description,
    required: Object.keys(properties).filter((name) => !optional.includes(name)),
    properties,
    additionalProperties: false,
  });
  /** a command's data: its fields and the business time every command carries */
  const data = (description: string, properties: Record<string, JsonSchema>, ...optional: string[]): JsonSchema =>
    object(description, { ...properties, occurredAt }, ...optional);

  const personal = ref(PERSONAL_DATA_SCHEMA);
  const schemas: Record<ExternalCommandType, JsonSchema> = {
    RegisterProspect: data(
      'A prospect registers: where they came from, who referred them, and what they told us.',
      { customerId: id, source: text(), channel: text(), campaign: text(), referredBy: id, personal },
      'channel',
      'campaign',
      'referredBy',
      'personal',
    ),
    RecordTouchpoint: data(
      'A contact with a customer, either way.',
      { customerId: id, channel: text(), direction: oneOf(TOUCHPOINT_DIRECTIONS), kind: text(), note: text(LONG_TEXT_MAX) },
      'note',
    ),
    RecordPurchase: data(
      'An order of one or more lines.',
      {
        customerId: id,
        orderId: id,
        lines: {
          type: 'array',
          minItems: 1,
          maxItems: MAX_PURCHASE_LINES,
          items: ref(PURCHASE_LINE_SCHEMA),
          description: `a non-empty array of purchase lines (at most ${MAX_PURCHASE_LINES})`,
        },
        channel: text(),
        location: text(),
        campaign: text(),
      },
      'channel',
      'location',
      'campaign',
    ),
    RecordFeedback: data(
      'A score and what kind of feedback it was, perhaps about an employee.',
      {
        customerId: id,
        feedbackId: id,
        score: {
          type: 'integer',
          minimum: FEEDBACK_SCORE_MIN,
          maximum: FEEDBACK_SCORE_MAX,
          description: `an integer from ${FEEDBACK_SCORE_MIN} to ${FEEDBACK_SCORE_MAX}`,
        },
        kind: oneOf(FEEDBACK_KINDS),
        topic: text(),
        employeeId: id,
        comment: text(LONG_TEXT_MAX),
      },
      'topic',
      'employeeId',
      'comment',
    ),
    ThankCustomer: data('A gesture of thanks and why, with what it was worth.', { customerId: id, gesture: text(), reason: text(), valueMinor: minorUnits }, 'valueMinor'),
    UpdateProfile: data(
      'Personal data, preferences or consents changed; the fields left out stay as they were.',
      {
        customerId: id,
        personal,
        preferences: recordOf(text(LONG_TEXT_MAX), `strings (at most ${LONG_TEXT_MAX} characters each)`),
        consents: recordOf({ type: 'boolean' }, 'true or false'),
      },
      'personal',
      'preferences',
      'consents',
    ),
    MarkCustomerLost: data('A customer is known to be lost, and why.', { customerId: id, reason: text(LONG_TEXT_MAX) }),
    ChurnIfInactive: data('Churn the customer if they bought nothing for the churn period before occurredAt.', { customerId: id }),
    EraseCustomerPersonalData: data('Erase the personal data of a customer (their facts stay).', { customerId: id, requestedBy: text() }, 'requestedBy'),
    HireEmployee: data('An employee joins.', { employeeId: id, name: text(), role: text() }, 'role'),
    RecordEmployeeLeft: data('An employee leaves.', { employeeId: id, reason: text(LONG_TEXT_MAX) }, 'reason'),
    RecordCampaignSpend: data('Money spent on a campaign, once per spendId.', { campaignId: id, spendId: id, channel: text(), amountMinor: minorUnits }),
  };

  return {
    [PERSONAL_DATA_SCHEMA]: object(
      'What a person told us of themselves; every field optional.',
      {
        name: text(),
        email: {
          type: 'string',
          maxLength: EMAIL_MAX_LENGTH,
          pattern: EMAIL_PATTERN.source,
          description: `an email address of at most ${EMAIL_MAX_LENGTH} characters; ${WELL_FORMED}`,
        },
        phone: text(PHONE_MAX_LENGTH),
        birthday: {
          type: 'string',
          pattern: ISO_DATE.source,
          ...(openApi ? { format: 'date' as const } : {}),
          description: `${EXPECTED.date}, on a real calendar day (which this schema cannot check)`,
        },
      },
      'name',
      'email',
      'phone',
      'birthday',
    ),
    [PURCHASE_LINE_SCHEMA]: object('One line of an order.', {
      sku: id,
      category: text(),
      quantity: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'a positive integer' },
      unitPriceMinor: minorUnits,
      unitCostMinor: minorUnits,
    }),
    ...Object.fromEntries(EXTERNAL_COMMAND_TYPES.map((type) => [commandDataSchemaName(type), schemas[type]])),
  };
}

/** commandId and correlationId: the caller's idempotency key, and the conversation the command is part of */
export const COMMAND_KEY_SCHEMA: JsonSchema = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_KEY_LENGTH,
  pattern: KEY_PATTERN.source,
  description: `${EXPECTED_KEY} or characters below U+0020; lengths in UTF-16 code units`,
};

/** The envelope of one command type, its data referred to as `${refBase}<Type>Data`. */
export function commandEnvelopeSchema(type: ExternalCommandType, refBase: string, dialect: CommandSchemaDialect): JsonSchema {
  return {
    type: 'object',
    description: `A ${type} command.`,
    required: ['type', 'commandId', 'data'],
    properties: {
      type: dialect === 'openapi-3.0' ? { type: 'string', enum: [type] } : { const: type },
      commandId: { ...COMMAND_KEY_SCHEMA, description: `idempotency key on the command's stream: the same command twice stores its events once, another command under a used id is refused (409 command_id_reused); ${COMMAND_KEY_SCHEMA.description}` },
      correlationId: { ...COMMAND_KEY_SCHEMA, description: `defaults to commandId; ${COMMAND_KEY_SCHEMA.description}` },
      data: { $ref: `${refBase}${commandDataSchemaName(type)}` },
    },
    additionalProperties: false,
  };
}

