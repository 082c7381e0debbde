export * from './servers';
export * from './decider-spec';
export * from './event-store.contract';
export * from './audit-fixtures';
