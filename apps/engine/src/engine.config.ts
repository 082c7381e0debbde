import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { storageConfigFromEnv, withoutPassword, type StorageConfig } from '@clientele/application';
import { kafkaConfigFromEnv, messagingRolesFromEnv, type KafkaConfig } from '@clientele/messaging';
import { READ_MODEL_SCHEMA_MAX, READ_MODEL_SCHEMA_SUFFIX, readModelConfigFromEnv, type ReadModelConfig } from '@clientele/projections';
import { defaultPolicy, lifecyclePolicy, type LifecyclePolicy } from '@clientele/domain';

/**
 * Engine configuration, from environment variables with documented defaults (docs/engine.md).
 * Validated once at start: a bad value stops the engine with a message naming the variable.
 */
export interface EngineConfig {
  port: number;
  /**
   * `CLIENTELE_OPS_PORT`: where a process without the http role serves `/health` and `/metrics`
   * (and nothing else); unset, such a process listens nowhere
   */
  opsPort?: number;
  dataDir: string;
  store: 'sqlite' | 'postgres' | 'eventstoredb';
  durability: 'full' | 'normal';
  /** where the log, customer keys and checkpoints live (shared with the CLI) */
  storage: StorageConfig;
  policy: LifecyclePolicy;
  /** what this process does: serve HTTP, run projections, relay events to Kafka, ingest commands from Kafka */
  roles: { http: boolean; projector: boolean; relay: boolean; ingest: boolean };
  /** where the read models live, read from the same environment as the rest; with the http or projector role */
  readModels?: ReadModelConfig;
  /** the Kafka cluster and topics, read from the same environment as the rest; with the relay or ingest role */
  kafka?: KafkaConfig;
  /** customers of synthetic demo data to seed into an empty store at start (0: none) */
  demoCustomers: number;
  /** run the referral process manager in this process */
  processManager: boolean;
  batchConcurrency: number;
  maxBatchItems: number;
  /** body limits in bytes */
  maxBodyBytes: number;
  maxBatchBodyBytes: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** one JSON object per log line (production) or readable lines (development) */
  jsonLogs: boolean;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    expected: string,
    actual: string,
  ) {
    super(`${variable}: expected ${expected}, got ${JSON.stringify(actual)}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `an integer from ${min} to ${max}`, raw);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(values as readonly string[]).includes(raw)) throw new ConfigError(name, `one of ${values.join(', ')}`, raw);
  return raw as T;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'on', 'yes'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'off', 'no'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(name, 'true or false (also 1/0, on/off, yes/no)', raw);
}

function storageFromEnv(env: Env): StorageConfig {
  try {
    return storageConfigFromEnv(env);
  } catch (error) {
    const message = (error as Error).message;
    // a secret: what was wrong with it, never its value
    if (message.startsWith('CLIENTELE_MASTER_KEY')) {
      const bytes = Buffer.from(env.CLIENTELE_MASTER_KEY ?? '', 'base64').length;
      throw new ConfigError('CLIENTELE_MASTER_KEY', '32 bytes encoded as base64 (44 characters)', `${bytes} bytes once decoded`);
    }
    const variable = /^([A-Z_]+):/.exec(message)?.[1] ?? 'CLIENTELE_STORE';
    const shown = env.DATABASE_URL === undefined ? env : { ...env, DATABASE_URL: withoutPassword(env.DATABASE_URL) };
    throw libraryConfigError(variable, message, shown, false);
  }
}

/**
 * The read models' settings are read when the projector starts, after the event store was opened
 * (and, on PostgreSQL, its schema created): checked here so a wrong one stops the start before
 * anything is created.
 */
function checkReadModels(env: Env, dataDir: string, store: string): ReadModelConfig {
  try {
    return readModelConfigFromEnv({ ...env, CLIENTELE_DATA_DIR: dataDir, CLIENTELE_STORE: store });
  } catch (error) {
    const message = (error as Error).message;
    if (message.includes('derived from CLIENTELE_PG_SCHEMA')) {
      const most = READ_MODEL_SCHEMA_MAX - READ_MODEL_SCHEMA_SUFFIX.length;
      throw new ConfigError(
        'CLIENTELE_PG_SCHEMA',
        `at most ${most} characters while CLIENTELE_READ_MODELS_PG_SCHEMA is unset (the read models' schema is named after it, with ${READ_MODEL_SCHEMA_SUFFIX}, in at most ${READ_MODEL_SCHEMA_MAX})`,
        env.CLIENTELE_PG_SCHEMA ?? '',
      );
    }
    const variable = /^([A-Z_]+)/.exec(message)?.[1] ?? 'CLIENTELE_READ_MODELS';
    throw libraryConfigError(variable, message, env, false);
  }
}

/**
 * `CLIENTELE_ROLES` (comma separated: http, projector, relay, ingest) picks what this process runs;
 * unset, it serves HTTP and runs the projections, plus relay and ingest when `CLIENTELE_KAFKA=on`.
 */
function rolesFromEnv(env: Env): { roles: EngineConfig['roles']; kafkaConfig?: KafkaConfig } {
  let kafka: { relay: boolean; ingest: boolean };
  try {
    kafka = messagingRolesFromEnv(env);
  } catch (error) {
    const message = (error as Error).message;
    throw libraryConfigError(message.startsWith('CLIENTELE_KAFKA') ? 'CLIENTELE_KAFKA' : 'CLIENTELE_ROLES', message, env, true);
  }
  let kafkaConfig: KafkaConfig | undefined;
  if (kafka.relay || kafka.ingest) {
    // the broker settings are used when messaging starts, after the app has booted: read here so a
    // wrong value stops the start like every other setting, named
    try {
      kafkaConfig = kafkaConfigFromEnv(env);
    } catch (error) {
      const message = (error as Error).message;
      throw libraryConfigError(message.slice(0, message.indexOf(':')), message, env, false);
    }
  }
  const listed = env.CLIENTELE_ROLES?.trim();
  const names = listed ? listed.split(',').map((r) => r.trim().toLowerCase()) : ['http', 'projector'];
  return { roles: { http: names.includes('http'), projector: names.includes('projector'), ...kafka }, ...(kafkaConfig ? { kafkaConfig } : {}) };
}

/**
 * A setting the messaging library refused, in its own words "<variable>: expected …, got …", as a
 * ConfigError: what it expected, and (for a list) which entry it refused.
 */
function libraryConfigError(variable: string, message: string, env: Env, list: boolean): ConfigError {
  const [expected, refused] = message
    .slice(message.indexOf(':') + 1)
    .trim()
    .replace(/^expected /, '')
    .split(/, got /);
  const what = refused !== undefined && list ? `${expected} (${refused} is not one)` : (expected ?? message);
  return new ConfigError(variable, what, env[variable] ?? '');
}

export function loadEngineConfig(env: Env = process.env): EngineConfig {
  const production = env.NODE_ENV === 'production';
  const dataDir = resolve(env.CLIENTELE_DATA_DIR || './data');
  if (existsSync(dataDir) && !statSync(dataDir).isDirectory()) {
    throw new ConfigError('CLIENTELE_DATA_DIR', 'a directory (made when missing), not a file', env.CLIENTELE_DATA_DIR || './data');
  }
  const store = oneOf(env, 'CLIENTELE_STORE', ['sqlite', 'postgres', 'eventstoredb'] as const, 'sqlite');
  const storage = storageFromEnv(env);
  const { roles, kafkaConfig } = rolesFromEnv(env);
  const readModels = roles.http || roles.projector ? checkReadModels(env, dataDir, store) : undefined;
  return {
    port: integer(env, 'PORT', 3000, 0, 65535),
    ...(env.CLIENTELE_OPS_PORT ? { opsPort: integer(env, 'CLIENTELE_OPS_PORT', 0, 0, 65535) } : {}),
    dataDir,
    store,
    durability: oneOf(env, 'CLIENTELE_DURABILITY', ['full', 'normal'] as const, 'full'),
    storage,
    roles,
    ...(readModels ? { readModels } : {}),
    ...(kafkaConfig ? { kafka: kafkaConfig } : {}),
    demoCustomers: integer(env, 'CLIENTELE_DEMO_CUSTOMERS', 0, 0, 100_000),
    // lifecyclePolicy re-checks the thresholds with the domain's own rules.
    policy: lifecyclePolicy({
      repeatPurchaseThreshold: integer(env, 'CLIENTELE_REPEAT_PURCHASE_THRESHOLD', defaultPolicy.repeatPurchaseThreshold, 1),
      advocateMinConvertedReferrals: integer(
        env,
        'CLIENTELE_ADVOCATE_MIN_CONVERTED_REFERRALS',
        defaultPolicy.advocateMinConvertedReferrals,
        1,
      ),
      promoterMinScore: integer(env, 'CLIENTELE_PROMOTER_MIN_SCORE', defaultPolicy.promoterMinScore, 0, 10),
      churnAfterDays: integer(env, 'CLIENTELE_CHURN_AFTER_DAYS', defaultPolicy.churnAfterDays, 1),
    }),
    processManager: flag(env, 'CLIENTELE_PROCESS_MANAGER', true),
    batchConcurrency: integer(env, 'CLIENTELE_BATCH_CONCURRENCY', 64, 1, 1024),
    maxBatchItems: integer(env, 'CLIENTELE_MAX_BATCH_ITEMS', 5000, 1, 100_000),
    maxBodyBytes: integer(env, 'CLIENTELE_MAX_BODY_BYTES', 256 * 1024, 1024),
    maxBatchBodyBytes: integer(env, 'CLIENTELE_MAX_BATCH_BODY_BYTES', 10 * 1024 * 1024, 1024),
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    jsonLogs: production,
  };
}
