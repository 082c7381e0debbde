import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { auditStoreAddress, ClienteleMetrics, type OpenedStorage } from '@clientele/application';
import {
  allProjections,
  configuredProjections,
  foldedByOtherVersions,
  isReadModelMissing,
  projectionStatuses,
  ProfileQueries,
  Projector,
  projectorOptions,
  readModelConfigFromEnv,
  readModelGenerations,
  readCheckpoints,
  ReadModels,
  ReferralQueries,
  StatisticsQueries,
  type CheckpointRow,
  type CustomerProfile,
  type ProjectionStatus,
  type ReadModelGenerations,
  type ReadModelStore,
} from '@clientele/projections';
import type { StoredEvent } from '@clientele/event-store';
import type { ProfileSource } from '@clientele/messaging';
import { Gauge } from 'prom-client';
import type { EngineConfig } from './engine.config';
import { ENGINE_CONFIG, ENGINE_STORAGE } from './engine.tokens';

/**
 * The read models this process serves, and (with the `projector` role) the projector that keeps
 * them current from the durable log. The projector follows the decrypting store, so profiles show
 * personal data until it is erased and never after.
 */
@Injectable()
export class EngineReadModels implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Projector');
  private models?: ReadModels;
  private projector?: Projector;
  private running?: Promise<void>;
  private stopping = false;
  private lastError?: string;
  private readonly batchListeners = new Set<(events: readonly StoredEvent[]) => void>();
  private generations?: ReadModelGenerations;
  private followTimer?: NodeJS.Timeout;
  private followingPromoted?: Promise<void>;
  /** a promoted generation this process could not serve, so that it is reported once */
  private declined?: string;
  private followFailure?: string;
  /** without the projector role: where the served read models stood when last seen moving (see stalledFor) */
  private servedProgress?: { position: number; at: number };
  /** a generation made current that is still behind the one served, and since when (see FOLLOW_BEHIND_MAX_MS) */
  private behindSince?: { name: string | undefined; at: number };
  profiles!: ProfileQueries;
  referrals!: ReferralQueries;
  statistics!: StatisticsQueries;

  constructor(
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
    @Inject(ENGINE_STORAGE) private readonly storage: OpenedStorage,
    private readonly metrics: ClienteleMetrics,
  ) {}

  async onModuleInit(): Promise<void> {
    // as loadEngineConfig read it, from the environment it was given (a config built by hand may leave it out)
    const readConfig = this.config.readModels ?? readModelConfigFromEnv({ ...process.env, CLIENTELE_DATA_DIR: this.config.dataDir, CLIENTELE_STORE: this.config.store });
    const generations = readModelGenerations(readConfig);
    this.generations = generations;
    this.models = new ReadModels(await generations.openCurrent());
    this.profiles = new ProfileQueries(this.models);
    this.referrals = new ReferralQueries(this.models);
    this.statistics = new StatisticsQueries(this.models);
    this.followTimer = setInterval(() => {
      this.followingPromoted ??= this.followPromoted().finally(() => (this.followingPromoted = undefined));
    }, FOLLOW_PROMOTED_MS);
    this.followTimer.unref();
    // also where another process folds them: the lag of the read models this process answers from
    const lag = new Gauge({
      name: 'clientele_projection_lag_events',
      help: 'events stored but not yet folded into each read model this process answers from',
      labelNames: ['projection'],
      registers: [this.metrics.registry],
      collect: async () => {
        for (const s of (await this.status()) ?? []) lag.set({ projection: s.name }, s.lag);
      },
    });
    if (!this.config.roles.projector) return;
    this.projector = new Projector(this.storage.store, this.models, configuredProjections(readConfig), {
      ...projectorOptions(readConfig, generations),
      storedLog: this.storage.raw,
      // a refusal of read models that do not match the log gives the whole command to check it
      auditStore: auditStoreAddress(this.storage.config.store),
      onBatchApplied: (events) => {
        for (const listener of this.batchListeners) listener(events);
      },
    });
    await this.projector.start();
    // after a restart (a crash included), where the read models pick up: what an operator checks first
    const statuses = await this.projector.status();
    const from = Math.min(...statuses.map((s) => s.position));
    const head = statuses[0]?.head ?? 0;
    if (head > 0) this.logger.log(`read models resume after position ${from} of ${head} (${Math.max(0, head - from)} events to fold)`);
    this.running = this.follow();
  }

  /** runs the projector until shutdown; a failed batch is retried from its checkpoint after a pause */
  private async follow(): Promise<void> {
    let pause = 500;
    while (!this.stopping && this.projector) {
      try {
        await this.projector.run();
        pause = 500;
      } catch (error) {
        this.lastError = error instanceof Error ? error.message : String(error);
        this.logger.error(`projection batch failed, retrying from the checkpoint in ${pause} ms: ${this.lastError}`);
        await new Promise((resolve) => setTimeout(resolve, pause));
        pause = Math.min(pause * 2, 30_000);
      }
    }
  }

  /**
   * Another process made another generation current (`clientele replay`, or the projector process
   * of a deployment split by roles after its rebuild): serve that one from now on. With the
   * projector role it is caught up and swapped in under the projector's lock (Projector.adopt);
   * without it, the process that folds it keeps it current and this one swaps to it at once.
   */
  async followPromoted(): Promise<void> {
    const generations = this.generations;
    const models = this.models;
    if (!generations || !models || this.stopping) return;
    const name = await generations.currentName(models).catch(() => undefined);
    if (name === undefined || name === generations.nameOf(models.current) || name === this.declined) return;
    const next = await generations.openLive();
    if (!next) return;
    const nextName = generations.nameOf(next);
    try {
      let adopted: boolean;
      if (this.projector) adopted = await this.projector.adopt(next);
      else {
        // the projector catches a replayed generation up once it adopts it: until then it may be
        // behind the one served here, and swapping at once would answer with older figures
        const since = this.behindSince;
        const waited = since !== undefined && since.name === nextName ? Date.now() - since.at : 0;
        const verdict = await swapIfSameVersions(models, next, waited >= FOLLOW_BEHIND_MAX_MS);
        if (verdict === 'behind') {
          if (this.behindSince?.name !== nextName) this.behindSince = { name: nextName, at: Date.now() };
          await next.close();
          return;
        }
        this.behindSince = undefined;
        adopted = verdict === 'swapped';
      }
      if (adopted) {
        this.logger.log(`serving read-model generation ${nextName}, made current by another process`);
        return;
      }
      await next.close();
      if (nextName !== undefined && !this.projector?.isRebuilding) {
        this.declined = nextName;
        this.logger.warn(`read-model generation ${nextName} was made current by another process but holds read models of another version; serving ${generations.nameOf(models.current)} until restart`);
      }
    } catch (error) {
      await next.close().catch(() => undefined);
      // tried again every FOLLOW_PROMOTED_MS; the same failure is reported once
      const failure = `could not serve read-model generation ${nextName}: ${error instanceof Error ? error.message : String(error)}`;
      if (failure !== this.followFailure) this.logger.error(failure);
      this.followFailure = failure;
    }
  }

  /**
   * The profiles as the Kafka snapshot feed sees them (only where the projector runs: the feed hears
   * of each committed batch in process). Personal fields stay out of Kafka, as on every other topic.
   */
  profileSource(): ProfileSource | undefined {
    const projector = this.projector;
    if (!projector) return undefined;
    return {
      load: async (customerId, asOf) => {
        const profile = await this.profiles.getProfile(customerId, asOf);
        if (profile === undefined) return undefined;
        return profile.erased ? null : withoutPersonalData(profile);
      },
      position: async () => {
        const positions = (await projector.status()).map((s) => s.position);
        return positions.length > 0 ? Math.min(...positions) : 0;
      },
      onBatchApplied: (listener) => {
        this.batchListeners.add(listener);
        return () => this.batchListeners.delete(listener);
      },
    };
  }

  /** waits until every event stored so far is folded (tests, demo seeding) */
  async catchUp(): Promise<number | undefined> {
    return this.projector?.catchUp();
  }

  async status(): Promise<(ProjectionStatus & { lastError?: string })[] | undefined> {
    if (!this.projector) return this.servedStatus();
    const statuses = await this.projector.status();
    // a failure that the projector has since recovered from is no longer news
    if (statuses.every((s) => s.lag === 0)) this.lastError = undefined;
    return statuses.map((s) => (this.lastError ? { ...s, lastError: this.lastError } : s));
  }

  /**
   * Without the projector role: where the read models this process serves stand, from their
   * checkpoints (another process folds them); each one says so while nothing has created it yet.
   */
  private async servedStatus(): Promise<(ProjectionStatus & { lastError?: string })[] | undefined> {
    const models = this.models;
    if (!models) return undefined;
    const head = await this.storage.store.headPosition();
    const checkpoints = await checkpointsOrNone(models);
    const statuses = projectionStatuses(allProjections(), checkpoints, head);
    const stalled = this.stalledFor(statuses);
    return statuses.map((s) =>
      !checkpoints.has(s.name)
        ? { ...s, lastError: 'not created yet: a process with the projector role creates it from the log' }
        : stalled !== undefined && s.lag > 0
          ? { ...s, lastError: `no progress for ${Math.round(stalled / 1000)} s while events wait: is a process with the projector role running?` }
          : s,
    );
  }

  /**
   * How long the served read models have stood still while events waited, once that is longer
   * than PROJECTOR_STALLED_MS: the projector process that folds them is down or stuck, which this
   * process cannot see otherwise.
   */
  private stalledFor(statuses: readonly ProjectionStatus[]): number | undefined {
    const position = Math.min(...statuses.map((s) => s.position));
    const waiting = statuses.some((s) => s.lag > 0);
    const now = Date.now();
    if (!waiting || this.servedProgress === undefined || position !== this.servedProgress.position) {
      this.servedProgress = { position, at: now };
      return undefined;
    }
    const still = now - this.servedProgress.at;
    return still > PROJECTOR_STALLED_MS ? still : undefined;
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.followTimer);
    await this.followingPromoted;
    await this.projector?.stop();
    await this.running;
    await this.models?.close();
  }
}

/** A store's checkpoints; none where no projector has created the read models yet. */
async function checkpointsOrNone(store: Parameters<typeof readCheckpoints>[0]): Promise<Map<string, CheckpointRow>> {
  try {
    return await readCheckpoints(store);
  } catch (error) {
    if (!isReadModelMissing(error)) throw error;
    return new Map();
  }
}

/**
 * Without the projector role: swaps to `next` unless a read model in it was folded by another
 * version of its code than this process's (its queries would read tables they do not know), or it
 * has folded the log less far than the ones served now (unless `evenBehind`): 'other_version' and
 * 'behind' leave it unswapped.
 */
async function swapIfSameVersions(models: ReadModels, next: ReadModelStore, evenBehind: boolean): Promise<'swapped' | 'other_version' | 'behind'> {
  const projections = allProjections();
  const theirs = await readCheckpoints(next);
  if (foldedByOtherVersions(projections, theirs).length > 0) return 'other_version';
  if (!evenBehind) {
    // none yet where no projector ever ran (the served generation has no tables): anything is ahead
    const ours = await checkpointsOrNone(models.current);
    const behind = projections.some((p) => Number(theirs.get(p.name)?.position ?? 0) < Number(ours.get(p.name)?.position ?? 0));
    if (behind) return 'behind';
  }
  await models.swap(next);
  return 'swapped';
}

/**
 * Without the projector role: read models that stand still this long while events wait make
 * `/health` say `degraded`, naming the likely cause (no process folds them).
 */
export const PROJECTOR_STALLED_MS = 30_000;

/** how often a process looks whether another one made another read-model generation current */
export const FOLLOW_PROMOTED_MS = 2_000;

/**
 * How long a process without the projector role keeps serving its generation while the one made
 * current is still behind it (the projector catches it up after adopting it); then it swaps
 * anyway, well before a replaced PostgreSQL generation is dropped (STALE_GENERATION_GRACE_MS).
 */
export const FOLLOW_BEHIND_MAX_MS = 6_000;

/** the profile as published to Kafka: identity and birthday are personal data and stay behind the API */
export function withoutPersonalData(profile: CustomerProfile): Record<string, unknown> {
  const { identity: _identity, birthday: _birthday, daysToNextBirthday: _days, ...rest } = profile;
  return { ...rest, personalDataRedacted: true };
}
