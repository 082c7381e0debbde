export * from './read-model-store';
export * from './sqlite-read-model.store';
export * from './statistics.projection';
export * from './statistics.queries';
export * from './statistics.bench';
