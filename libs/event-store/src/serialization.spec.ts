import type { StoredEvent } from './event-store.port';
import { UpcasterRegistry, type Upcaster } from './serialization';

function stored(type: string, schemaVersion: number, data: StoredEvent['data']): StoredEvent {
  return {
    id: 'e-1',
    type,
    data,
    metadata: { occurredAt: '2026-01-01T00:00:00.000Z', schemaVersion },
    streamId: 'customer-1',
    revision: 0,
    position: 1,
    recordedAt: '2026-01-01T00:00:01.000Z',
    hash: 'h',
    prevHash: 'p',
  };
}

// v1 → v2: a single full name split in two; v2 → v3: an acquisition source, unknown for old events.
const splitName: Upcaster = {
  type: 'ProspectRegistered',
  fromVersion: 1,
  upcast: (e) => {
    const [firstName = '', ...rest] = String(e.data.name ?? '').split(' ');
    const { name: _name, ...data } = e.data;
    return { ...e, data: { ...data, firstName, lastName: rest.join(' ') }, metadata: { ...e.metadata, schemaVersion: 2 } };
  },
};
const addSource: Upcaster = {
  type: 'ProspectRegistered',
  fromVersion: 2,
  upcast: (e) => ({ ...e, data: { source: 'unknown', ...e.data }, metadata: { ...e.metadata, schemaVersion: 3 } }),
};

describe('upcaster registry', () => {
  it('brings an old event to the newest version one step at a time', () => {
    // given upcasters v1→v2 and v2→v3
    const registry = new UpcasterRegistry([splitName, addSource]);
    // when a v1 event is read
    const result = registry.upcast(stored('ProspectRegistered', 1, { name: 'Ada King Lovelace' }));
    // then it arrives as v3, with identity, place and hashes unchanged
    expect(result.data).toEqual({ source: 'unknown', firstName: 'Ada', lastName: 'King Lovelace' });
    expect(result).toMatchObject({ id: 'e-1', position: 1, hash: 'h', prevHash: 'p', metadata: { schemaVersion: 3 } });
  });

  it('leaves current events and other types as they are', () => {
    const registry = new UpcasterRegistry([splitName, addSource]);
    const current = stored('ProspectRegistered', 3, { firstName: 'Ada' });
    const other = stored('PurchaseRecorded', 1, { orderId: 'o-1' });
    expect(registry.upcast(current)).toBe(current);
    expect(registry.upcast(other)).toBe(other);
  });

  it('refuses two upcasters for the same type and version', () => {
    expect(() => new UpcasterRegistry([splitName, { ...splitName }])).toThrow(/ProspectRegistered schemaVersion 1/);
  });

  it('refuses an upcaster that does not raise the schema version', () => {
    const stuck = new UpcasterRegistry([{ type: 'X', fromVersion: 1, upcast: (e) => e }]);
    expect(() => stuck.upcast(stored('X', 1, {}))).toThrow(/higher schemaVersion/);
  });
});
