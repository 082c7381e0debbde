import { hash } from 'node:crypto';

// A fixed namespace so ids from Clientele commands never collide with another system's name-based ids.
const NAMESPACE = Buffer.from('6f1c1f0e9b7d4c3a8e2b5a4d3c2b1a09', 'hex');

/**
 * The id of the `index`-th event a command produces on a stream: a name-based (version 5 layout)
 * UUID over the stream and the command id. A retried append of the same decision carries the same
 * ids, so the store recognises it as the same append instead of recording it twice; a command id a
 * caller also used for another customer (or employee, or campaign) gives other ids there, so no two
 * events of the log share an id.
 */
export function eventIdFor(streamId: string, commandId: string, index: number): string {
  // One-shot hash over one buffer and string slicing: a Hash object, two updates and a Buffer
  // per event cost more than the digest itself on the command path.
  const name = `${streamId}\u0000${commandId}\u0000${index}`;
  const input = Buffer.allocUnsafe(NAMESPACE.length + Buffer.byteLength(name));
  NAMESPACE.copy(input, 0);
  input.write(name, NAMESPACE.length);
  const hex = hash('sha1', input, 'hex');
  // Version 5 in the high nibble of byte 6; the RFC 4122 variant (10xx) in the high bits of byte 8.
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
