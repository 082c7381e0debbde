export * from './read-model-store';
export * from './sqlite-read-model.store';
export * from './read-models';
export * from './projector';
export * from './read-model-digest';
