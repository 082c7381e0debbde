export * from './bootstrap';
export * from './engine.config';
export * from './engine.logger';
export * from './engine.module';
export * from './engine.tokens';
export * from './problem-details';
export * from './engine.runtime';
