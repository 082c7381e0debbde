import type { Engine } from './cli-context';

/** Replaced when the SQLite store and the application layer are merged in. */
export const openEngine = async (dataDir: string): Promise<Engine> => {
  throw new Error(`no engine wired yet (data dir ${dataDir})`);
};
