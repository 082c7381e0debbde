const fs = require('node:fs');
const path = require('node:path');

/** Unit specs (`*.spec.ts`) beside the code, server specs (`*.int-spec.ts`), journeys in `test/`. */
const swc = {
  swcrc: false,
  jsc: {
    target: 'es2022',
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    keepClassNames: true,
  },
  module: { type: 'commonjs' },
};

module.exports = {
  testEnvironment: 'node',
  roots: ['apps', 'libs', 'test', 'infra']
    .filter((dir) => fs.existsSync(path.join(__dirname, dir)))
    .map((dir) => `<rootDir>/${dir}`),
  testMatch: ['**/*.spec.ts', '**/*.int-spec.ts'],
  // NestJS 12 ships ES modules only; Jest's CommonJS runtime needs them transformed like our code.
  transform: { '^.+\\.(ts|js)$': ['@swc/jest', swc] },
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|file-type)/)'],
  moduleNameMapper: {
    '^@clientele/(domain|event-store|projections|messaging|contracts|testing|application|generator)$': '<rootDir>/libs/$1/src/index.ts',
  },
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 60000,
};
