export * from './servers';
export * from './in-memory-event-store';
