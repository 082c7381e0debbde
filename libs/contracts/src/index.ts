export * from './messages';
export * from './schemas';
export * from './command-schemas';
export * from './profile-schema';
export * from './schema-validation';
export * from './command-envelope';
export * from './command.dtos';
export { EXPECTED as EXPECTED_FIELD_TEXT, businessTimeOutOfRange } from './field-rules';
