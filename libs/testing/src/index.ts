export * from './servers';
export * from './decider-spec';
export * from './in-memory-event-store';
export * from './event-store.contract';
export * from './audit-fixtures';
export * from './stored-events';
export * from './customer-log.generator';
