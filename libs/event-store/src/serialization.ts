import type { StoredEvent } from './event-store.port';

/**
 * Turns a stored event of one type and schema version into the next version. Small and pure: it
 * sees only the stored event, and returns a new one whose `metadata.schemaVersion` is higher.
 */
export interface Upcaster {
  type: string;
  fromVersion: number;
  upcast(stored: StoredEvent): StoredEvent;
}

/**
 * The upcasters known to the application, applied on read so that old events reach deciders and
 * projections in today's shape. The stored bytes never change: `hash` and `prevHash` stay those of
 * the stored event, so the chain is verified on events read without upcasting.
 */
export class UpcasterRegistry {
  private readonly byKey = new Map<string, Upcaster>();

  constructor(upcasters: Iterable<Upcaster> = []) {
    for (const u of upcasters) this.register(u);
  }

  register(upcaster: Upcaster): this {
    const key = keyOf(upcaster.type, upcaster.fromVersion);
    if (this.byKey.has(key)) {
      throw new Error(`an upcaster for ${upcaster.type} schemaVersion ${upcaster.fromVersion} is already registered`);
    }
    this.byKey.set(key, upcaster);
    return this;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Applies upcasters one version at a time until none matches. */
  upcast(stored: StoredEvent): StoredEvent {
    let current = stored;
    for (;;) {
      const version = current.metadata.schemaVersion;
      const upcaster = this.byKey.get(keyOf(current.type, version));
      if (!upcaster) return current;
      const next = upcaster.upcast(current);
      if (!(next.metadata.schemaVersion > version)) {
        throw new Error(
          `upcaster for ${current.type} schemaVersion ${version} must return a higher schemaVersion, ` +
            `got ${String(next.metadata.schemaVersion)}`,
        );
      }
      current = next;
    }
  }
}

function keyOf(type: string, version: number): string {
  return `${type}@${version}`;
}
