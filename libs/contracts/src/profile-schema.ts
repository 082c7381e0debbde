import type { JsonSchema } from './schema-validation';

/**
 * The intimacy profile as `GET /customers/:id/profile` answers it, one schema for both places it is
 * published: the engine's OpenAPI document and, without the personal fields, the profiles topic's
 * `profile-snapshot.v1`. Every object is closed, so an answer or a snapshot that gains a field
 * fails the specs that validate real ones, instead of drifting from what other teams were given.
 * Written with keywords that OpenAPI 3.0 and JSON Schema 2020-12 read alike.
 */
const str: JsonSchema = { type: 'string' };
const int: JsonSchema = { type: 'integer' };
const num: JsonSchema = { type: 'number' };
const bool: JsonSchema = { type: 'boolean' };
const dateTime: JsonSchema = { type: 'string', format: 'date-time' };
const stage: JsonSchema = { type: 'string', enum: ['prospect', 'customer', 'repeat_buyer', 'advocate', 'churned'] };

function closed(properties: Record<string, JsonSchema>, required: string[] = Object.keys(properties)): JsonSchema {
  return { type: 'object', properties, required, additionalProperties: false };
}

const arrayOf = (items: JsonSchema): JsonSchema => ({ type: 'array', items });

/** the fields of a profile that are personal data: not on Kafka, gone after an erasure */
export const PROFILE_PERSONAL_FIELDS = ['identity', 'birthday', 'daysToNextBirthday'] as const;

export const ProfileSchema: JsonSchema = closed(
  {
    customerId: str,
    erased: bool,
    identity: closed({ name: str, email: str, phone: str }, []),
    birthday: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
    daysToNextBirthday: int,
    preferences: { type: 'object', additionalProperties: str },
    consents: { type: 'object', additionalProperties: bool },
    preferredChannel: str,
    habits: closed(
      {
        topCategories: arrayOf(closed({ category: str, quantity: int })),
        topProducts: arrayOf(closed({ sku: str, quantity: int })),
        averageBasketMinor: int,
        ordersPer30Days: num,
        usualWeekday: { type: 'string', enum: ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] },
        usualHourUtc: int,
      },
      ['topCategories', 'topProducts', 'ordersPer30Days'],
    ),
    firstPurchaseAt: dateTime,
    lastPurchaseAt: dateTime,
    stage,
    stageSince: dateTime,
    stageHistory: arrayOf(closed({ stage, at: dateTime, eventId: str, causationId: str }, ['stage', 'at', 'eventId'])),
    acquisition: closed({ source: str, channel: str, campaign: str, registeredAt: dateTime }, []),
    referredBy: str,
    referees: arrayOf(closed({ customerId: str, creditedAt: dateTime, convertedAt: dateTime }, ['customerId'])),
    feedback: closed({ count: int, averageScore: num, complaints: int }, ['count', 'complaints']),
    thanks: closed({
      count: int,
      recent: arrayOf(closed({ at: dateTime, gesture: str, reason: str, valueMinor: int }, ['at', 'gesture', 'reason'])),
    }),
    value: closed({ revenueMinor: int, costMinor: int, marginMinor: int }),
    rfm: closed({ recencyDays: int, frequency: int, monetaryMinor: int }, ['frequency', 'monetaryMinor']),
  },
  ['customerId', 'erased', 'identity', 'preferences', 'consents', 'habits', 'stageHistory', 'acquisition', 'referees', 'feedback', 'thanks', 'value', 'rfm'],
);

/** the profile on the profiles topic: without its personal fields, and saying so */
export const RedactedProfileSchema: JsonSchema = (() => {
  const properties = { ...ProfileSchema.properties };
  for (const field of PROFILE_PERSONAL_FIELDS) delete properties[field];
  return closed(
    { ...properties, personalDataRedacted: { const: true } },
    [...(ProfileSchema.required ?? []).filter((f) => !(PROFILE_PERSONAL_FIELDS as readonly string[]).includes(f)), 'personalDataRedacted'],
  );
})();
