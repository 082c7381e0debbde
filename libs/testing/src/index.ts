export * from './servers';
export * from './decider-spec';
export * from './in-memory-event-store';
export * from './customer-dataset';
export * from './stored-events';
export * from './customer-log.generator';
export * from './event-store.contract';
export * from './audit-fixtures';
