import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';

/** What every worker of the embedded store is started with, beside its own settings. */
export interface StoreWorkerData {
  /** the worker module to load */
  entry: string;
  /** set when the sources run untranspiled (tests): the worker compiles .ts on load with this @swc/core */
  swcCore?: string;
}

/**
 * Under the sources (tests run .ts transformed in memory) a worker has no compiled file to load:
 * it compiles the .ts modules it requires itself, with the same @swc/core.
 */
const TS_BOOTSTRAP = `
const fs = require('node:fs');
const { workerData } = require('node:worker_threads');
const swc = require(workerData.swcCore);
require.extensions['.ts'] = (m, filename) => {
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
    filename, swcrc: false, module: { type: 'commonjs' },
    jsc: { target: 'es2022', parser: { syntax: 'typescript' }, keepClassNames: true },
  });
  m._compile(code, filename);
};
require(workerData.entry);
`;

/**
 * Starts the worker module `name` of this folder (`sqlite-writer.worker`, …) with `settings` as its
 * workerData (plus `entry`, and `swcCore` under the sources), built or from the sources alike.
 */
export function startStoreWorker<T extends object>(name: string, settings: T): Worker {
  const ext = extname(__filename);
  const entry = join(__dirname, `${name}${ext}`);
  if (ext === '.ts') {
    const data: T & StoreWorkerData = { ...settings, entry, swcCore: require.resolve('@swc/core') };
    return new Worker(TS_BOOTSTRAP, { eval: true, workerData: data });
  }
  const data: T & StoreWorkerData = { ...settings, entry };
  return new Worker(entry, { workerData: data });
}
