import { createHash } from 'node:crypto';
import type { JsonValue, StoredEvent } from './event-store.port';

export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted, so the same content always hashes the same in every store. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value as JsonValue));
}

function sortKeys(value: JsonValue | undefined): JsonValue | undefined {
  if (Array.isArray(value)) return value.map((v) => sortKeys(v) ?? null);
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: JsonValue } = {};
    for (const key of Object.keys(value).sort()) {
      const v = sortKeys(value[key]);
      if (v !== undefined) out[key] = v;
    }
    return out;
  }
  return value;
}

/** The fields the chain protects: content, identity, place in the log, record time. */
export type HashedFields = Pick<
  StoredEvent,
  'id' | 'streamId' | 'revision' | 'position' | 'type' | 'data' | 'metadata' | 'recordedAt'
>;

/** sha256(prevHash + canonical content). Changing one byte, the order, or the predecessor changes it. */
export function chainHash(prevHash: string, e: HashedFields): string {
  return createHash('sha256')
    .update(prevHash)
    .update('\n')
    .update(
      canonicalJson({
        id: e.id,
        streamId: e.streamId,
        revision: e.revision,
        position: e.position,
        type: e.type,
        data: e.data,
        metadata: e.metadata,
        recordedAt: e.recordedAt,
      }),
    )
    .digest('hex');
}
