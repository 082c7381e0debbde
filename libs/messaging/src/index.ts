export * from './kafka-config';
export * from './topics';
export * from './event-messages';
export * from './checkpoint.store';
export * from './event-relay';
export * from './profile-snapshots';
export * from './command-ingest';
export * from './messaging.runtime';
