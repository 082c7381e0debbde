export * from './deterministic-id';
export * from './seeded-random';
export * from './synthetic-customers';
