import { createHash } from 'node:crypto';

/**
 * A UUID-shaped id derived from a name (version nibble 8: "custom"), so re-importing the same
 * input produces the same command ids and the store answers the repeats as no-ops.
 */
export const deterministicId = (name: string): string => {
  const hex = createHash('sha256').update(name).digest('hex');
  const variant = ((parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};
