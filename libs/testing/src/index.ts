export * from './servers';
export * from './customer-dataset';
export * from './stored-events';
export * from './in-memory-event-store.double';
export * from './customer-log.generator';
export * from './event-store.contract';
