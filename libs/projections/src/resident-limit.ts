/**
 * How many customers a rebuild instance keeps in memory by default (each of the three read models):
 * past it, what it holds is written out and rows are read back from the store, as the live
 * projections do. `CLIENTELE_REBUILD_RESIDENT_CUSTOMERS` sets it for the engine and the CLI.
 */
export const DEFAULT_RESIDENT_LIMIT = 500_000;
