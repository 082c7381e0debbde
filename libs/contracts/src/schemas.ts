/**
 * JSON Schemas (draft 2020-12) of the public messages, as published to other teams. Checked with ajv
 * in strict mode (`schema-validation.ts`): a keyword ajv does not know fails at compile time.
 */
import type { JsonSchema } from './schema-validation';
import { LIFECYCLE_TRANSITION_TYPES, STAGE_AFTER } from './messages';
import { RedactedProfileSchema } from './profile-schema';
import { EXTERNAL_COMMAND_TYPES } from './command.dtos';
import { MAX_KEY_LENGTH } from './command-envelope';
import { COMMAND_KEY_SCHEMA, commandDataSchemas, commandDataSchemaName } from './command-schemas';

const DRAFT = 'https://json-schema.org/draft/2020-12/schema';
const BASE = 'https://clientele.example/schemas';

const nonEmpty: JsonSchema = { type: 'string', minLength: 1 };
const dateTime: JsonSchema = { type: 'string', format: 'date-time' };
const natural: JsonSchema = { type: 'integer', minimum: 0 };

const envelopeProperties: Record<string, JsonSchema> = {
  id: nonEmpty,
  type: nonEmpty,
  schemaVersion: { type: 'integer', minimum: 1 },
  streamId: nonEmpty,
  revision: natural,
  position: { type: 'integer', minimum: 1 },
  occurredAt: dateTime,
  recordedAt: dateTime,
  correlationId: nonEmpty,
  causationId: nonEmpty,
  data: { type: 'object' },
};
const envelopeRequired = ['id', 'type', 'schemaVersion', 'streamId', 'revision', 'position', 'occurredAt', 'recordedAt', 'data'];

export const EventEnvelopeSchema: JsonSchema = {
  $schema: DRAFT,
  $id: `${BASE}/event.v1.json`,
  title: 'Clientele event',
  description: 'A stored event as published on the events topic, keyed by stream id.',
  type: 'object',
  required: envelopeRequired,
  properties: envelopeProperties,
  additionalProperties: false,
};

export const LifecycleTransitionSchema: JsonSchema = {
  $schema: DRAFT,
  $id: `${BASE}/lifecycle-transition.v1.json`,
  title: 'Clientele lifecycle transition',
  description: 'A customer moved to another lifecycle stage; the event envelope plus customerId and toStage.',
  type: 'object',
  required: [...envelopeRequired, 'customerId', 'toStage'],
  properties: {
    ...envelopeProperties,
    type: { enum: [...LIFECYCLE_TRANSITION_TYPES] },
    data: { type: 'object', required: ['customerId', 'occurredAt'], properties: { customerId: nonEmpty, occurredAt: dateTime } },
    customerId: nonEmpty,
    toStage: { enum: [...new Set(Object.values(STAGE_AFTER))] },
  },
  additionalProperties: false,
};

export const ProfileSnapshotSchema: JsonSchema = {
  $schema: DRAFT,
  $id: `${BASE}/profile-snapshot.v1.json`,
  title: 'Clientele profile snapshot',
  description: 'The latest profile of a customer on the compacted profiles topic; a null value is a tombstone.',
  type: 'object',
  required: ['customerId', 'snapshotVersion', 'profile'],
  properties: {
    customerId: nonEmpty,
    snapshotVersion: { const: 1 },
    position: natural,
    asOf: { ...dateTime, description: 'when the profile was read: rfm.recencyDays, habits.ordersPer30Days and the other date-relative figures are as of then' },
    profile: { ...RedactedProfileSchema, description: 'GET /customers/:id/profile without identity, birthday and daysToNextBirthday' },
  },
  additionalProperties: false,
};

export const ReferralEdgeSchema: JsonSchema = {
  $schema: DRAFT,
  $id: `${BASE}/referral-edge.v1.json`,
  title: 'Clientele referral edge',
  description: 'A referrer credited with a referee, or that referee converting.',
  type: 'object',
  required: ['eventId', 'type', 'referrerId', 'refereeId', 'status', 'occurredAt', 'position'],
  properties: {
    eventId: nonEmpty,
    type: { enum: ['ReferralCredited', 'ReferralConverted'] },
    referrerId: nonEmpty,
    refereeId: nonEmpty,
    status: { enum: ['credited', 'converted'] },
    orderId: nonEmpty,
    occurredAt: dateTime,
    position: { type: 'integer', minimum: 1 },
  },
  additionalProperties: false,
};

/**
 * A command on the ingest topic: `type` one of the command types callers may send, and `data` the
 * shape of that type (command-schemas.ts). Narrower than it was until 2026-12 (`data` any object),
 * but only by what the application always refused.
 */
export const CommandEnvelopeSchema: JsonSchema = {
  $schema: DRAFT,
  $id: `${BASE}/command.v1.json`,
  title: 'Clientele command',
  description:
    'A command sent to the ingest topic (or POST /commands). data is checked per command type; what a schema cannot check ' +
    '(a business time in range, a real calendar day) is said in the descriptions, and the application checks it.',
  type: 'object',
  required: ['type', 'commandId', 'data'],
  properties: {
    type: { enum: [...EXTERNAL_COMMAND_TYPES] },
    commandId: COMMAND_KEY_SCHEMA,
    correlationId: COMMAND_KEY_SCHEMA,
    data: { type: 'object' },
  },
  additionalProperties: false,
  // if/then rather than oneOf: a wrong field is then reported once, at its path, instead of once per command type
  allOf: EXTERNAL_COMMAND_TYPES.map((type) => ({
    if: { properties: { type: { const: type } }, required: ['type'] },
    then: { properties: { data: { $ref: `#/$defs/${commandDataSchemaName(type)}` } } },
  })),
  $defs: commandDataSchemas('#/$defs/', 'json-schema'),
};

/**
 * What the ingest asks of a record before it hands it to the application: the envelope's own shape.
 * A record of this shape is the application's to judge, so its refusal (`invalid_command`) names the
 * fields at fault in the same words as the HTTP API; anything else is `not_a_command`.
 */
export const CommandEnvelopeShapeSchema: JsonSchema = {
  type: 'object',
  required: ['type', 'commandId', 'data'],
  properties: {
    type: nonEmpty,
    commandId: { type: 'string', minLength: 1, maxLength: MAX_KEY_LENGTH },
    correlationId: { type: 'string', minLength: 1, maxLength: MAX_KEY_LENGTH },
    data: { type: 'object' },
  },
  additionalProperties: false,
};

export const DeadLetterSchema: JsonSchema = {
  $schema: DRAFT,
  $id: `${BASE}/dead-letter.v1.json`,
  title: 'Clientele dead letter',
  description: 'An ingest record that was not accepted, with the reason and its original bytes.',
  type: 'object',
  required: ['reason', 'value', 'valueBytes', 'valueTruncated', 'key', 'sourceTopic', 'sourcePartition', 'sourceOffset', 'deadLetteredAt'],
  properties: {
    reason: nonEmpty,
    code: { type: 'string', pattern: '^[a-z][a-z0-9_]*$', description: 'what went wrong, for a program: empty_record, record_too_large, not_json, not_a_command, or the code of the refusal as the HTTP API names it' },
    errors: {
      type: 'array',
      items: { type: 'object', required: ['field', 'expected'], properties: { field: { type: 'string' }, expected: nonEmpty }, additionalProperties: false },
    },
    field: nonEmpty,
    value: { type: ['string', 'null'], pattern: '^[A-Za-z0-9+/]*={0,2}$' },
    valueBytes: natural,
    valueTruncated: { type: 'boolean' },
    key: { type: ['string', 'null'] },
    sourceTopic: nonEmpty,
    sourcePartition: natural,
    sourceOffset: { type: 'string', pattern: '^[0-9]+$' },
    commandId: nonEmpty,
    correlationId: nonEmpty,
    deadLetteredAt: dateTime,
  },
  additionalProperties: false,
};

export const PublicSchemas = {
  'event.v1': EventEnvelopeSchema,
  'lifecycle-transition.v1': LifecycleTransitionSchema,
  'profile-snapshot.v1': ProfileSnapshotSchema,
  'referral-edge.v1': ReferralEdgeSchema,
  'command.v1': CommandEnvelopeSchema,
  'dead-letter.v1': DeadLetterSchema,
} as const;
