export * from './read-model-store';
export * from './sqlite-read-model.store';
