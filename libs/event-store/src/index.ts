export * from './event-store.port';
export * from './hash-chain';
export * from './append-validation';
export * from './serialization';
export * from './sqlite/sqlite.event-store';
export * from './sqlite/sqlite.bench';
