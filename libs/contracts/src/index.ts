export * from './messages';
export * from './schemas';
export * from './json-schema.validator';
