export * from './event-store.port';
export * from './hash-chain';
export * from './verify-chain';
export * from './personal-data/customer-keys';
export * from './personal-data/personal-data.cipher';
export * from './personal-data/encrypting.event-store';
