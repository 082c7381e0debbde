export * from './servers';
export * from './customer-dataset';
