import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import type { JsonObject, JsonValue } from '../event-store.port';

/**
 * Which fields of which events are personal. They are stored encrypted with the customer's key;
 * everything else (amounts, dates, stages) stays readable so statistics survive an erasure.
 */
/** The fact a customer's erasure is recorded as: their key destroyed, their personal fields unreadable from then on. */
export const PERSONAL_DATA_ERASED = 'PersonalDataErased';

export const PERSONAL_FIELDS: Readonly<Record<string, readonly string[]>> = {
  ProspectRegistered: ['personal'],
  ProfileUpdated: ['personal'],
  FeedbackReceived: ['comment'],
  TouchpointRecorded: ['note'],
};

const PREFIX = 'enc:v1:';

/** the stored form of an encrypted field */
export interface EncryptedField {
  $personal: string;
}

export function isEncryptedField(value: JsonValue | undefined): value is { $personal: string } {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && typeof value.$personal === 'string'
  );
}

/**
 * The IV is derived from the key and the field's place (event id + field name), so a retried append
 * of the same event encrypts to the same bytes and stays idempotent at the store; an event id is
 * never reused for other content (the store refuses that), so no IV is ever reused for other text.
 */
export function encryptField(key: Buffer, value: JsonValue, aad: string): { $personal: string } {
  const iv = createHmac('sha256', key).update(aad).digest().subarray(0, 12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return { $personal: PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64') };
}

export const ERASED_FIELD = { $personal: 'erased' } as const;

export function decryptField(key: Buffer, field: { $personal: string }, aad: string): JsonValue {
  if (!field.$personal.startsWith(PREFIX)) throw new Error('unknown personal-data encoding');
  const raw = Buffer.from(field.$personal.slice(PREFIX.length), 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(raw.subarray(12, 28));
  const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  return JSON.parse(text) as JsonValue;
}

/** the customer a personal field belongs to: the owner of the customer stream */
export function customerOfStream(streamId: string): string | undefined {
  return streamId.startsWith('customer-') ? streamId.slice('customer-'.length) : undefined;
}

export function hasPersonalFields(type: string, data: JsonObject): boolean {
  const fields = PERSONAL_FIELDS[type];
  return !!fields && fields.some((f) => data[f] !== undefined);
}
