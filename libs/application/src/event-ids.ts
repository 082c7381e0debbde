import { createHash } from 'node:crypto';

// A fixed namespace so ids from Clientele commands never collide with another system's name-based ids.
const NAMESPACE = Buffer.from('6f1c1f0e9b7d4c3a8e2b5a4d3c2b1a09', 'hex');

/**
 * The id of the `index`-th event a command produces: a name-based (version 5 layout) UUID over the
 * command id. A retried append of the same decision carries the same ids, so the store recognises
 * it as the same append instead of recording it twice.
 */
export function eventIdFor(commandId: string, index: number): string {
  const bytes = createHash('sha1').update(NAMESPACE).update(`${commandId}\u0000${index}`).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
