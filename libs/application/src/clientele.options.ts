import type { LifecyclePolicy } from '@clientele/domain';
import type { EventStore } from '@clientele/event-store';
import type { CheckpointStore } from './checkpoint.store';

/** How the module gets its event store: an instance, or a factory run once at start. */
export type StoreSource = EventStore | (() => EventStore | Promise<EventStore>);

export interface ClienteleOptions {
  store: StoreSource;
  /** checkpoints and the customer index; default: in memory (pass a SqliteCheckpointStore to survive restarts) */
  checkpoints?: CheckpointStore | (() => CheckpointStore | Promise<CheckpointStore>);
  /** default: `defaultPolicy` of the domain */
  policy?: LifecyclePolicy;
  /** load-decide-append attempts before a conflict is answered as such; default 5 */
  maxAttempts?: number;
  /** commands of a batch (and of a sweep) in flight at once; default 64 */
  batchConcurrency?: number;
  /** streams whose folded state is kept between commands (least recently used forgotten first); 0 turns the cache off; default 100,000 */
  stateCacheStreams?: number;
  /** run the referral process manager in this process; default true */
  processManager?: boolean;
  /** close the store and checkpoints when the app shuts down; default true */
  closeOnShutdown?: boolean;
}

export interface ResolvedClienteleOptions {
  maxAttempts: number;
  batchConcurrency: number;
  stateCacheStreams: number;
  processManager: boolean;
  closeOnShutdown: boolean;
}

export function resolveOptions(options: ClienteleOptions): ResolvedClienteleOptions {
  const positive = (value: number | undefined, fallback: number, name: string): number => {
    const v = value ?? fallback;
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${String(value)}`);
    return v;
  };
  const nonNegative = (value: number | undefined, fallback: number, name: string): number => {
    const v = value ?? fallback;
    if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a whole number ≥ 0, got ${String(value)}`);
    return v;
  };
  return {
    maxAttempts: positive(options.maxAttempts, 5, 'maxAttempts'),
    batchConcurrency: positive(options.batchConcurrency, 64, 'batchConcurrency'),
    stateCacheStreams: nonNegative(options.stateCacheStreams, 100_000, 'stateCacheStreams'),
    processManager: options.processManager ?? true,
    closeOnShutdown: options.closeOnShutdown ?? true,
  };
}
