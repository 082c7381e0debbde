export * from './events';
export * from './commands';
export * from './policy';
export * from './errors';
