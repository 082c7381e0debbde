import { auditStoreAddress } from './storage';

describe('the store as audit verify --store takes it, for commands given in messages', () => {
  it('names an embedded store by its absolute file, quoted for a shell when the path needs it', () => {
    expect(auditStoreAddress({ kind: 'sqlite', file: '/srv/clientele/clientele.db' })).toBe('sqlite:/srv/clientele/clientele.db');
    expect(auditStoreAddress({ kind: 'sqlite', file: "/srv/o'hara data/clientele.db" })).toBe(`'sqlite:/srv/o'\\''hara data/clientele.db'`);
  });

  it('names a PostgreSQL store by URL and schema, and leaves a password to the shell rather than to a log', () => {
    expect(auditStoreAddress({ kind: 'postgres', url: 'postgres://app@db:5432/crm', schema: 'eu' })).toBe('postgres:postgres://app@db:5432/crm#eu');
    expect(auditStoreAddress({ kind: 'postgres', url: 'postgres://app:s3cret@db:5432/crm', schema: 'eu' })).toBe('"postgres:$DATABASE_URL#eu"');
  });

  it('names no store for EventStoreDB, whose log the audit commands do not walk', () => {
    expect(auditStoreAddress({ kind: 'eventstoredb', url: 'esdb://localhost:2113?tls=false' })).toBeUndefined();
  });
});
