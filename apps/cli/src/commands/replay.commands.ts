import { auditStoreAddress, openStorage, storageConfigFromEnv } from '@clientele/application';
import type { EventStore } from '@clientele/event-store';
import { configuredReadModels, readReadModelsAnchor } from '../read-models-anchor';
import { assertConfiguredStoreExists } from '../store-checks';
import {
  configuredProjections,
  digest,
  logAnchorMismatch,
  logAnchorMismatchMessage,
  readLogAnchor,
  ReadModelsOfAnotherLogError,
  proveReplay,
  readModelConfigFromEnv,
  readModelGenerations,
  replayProjections,
  type ReplayComparison,
} from '@clientele/projections';

type Out = NodeJS.WritableStream;

export interface ReplayRun {
  env: NodeJS.ProcessEnv;
  stdout: Out;
  stderr: Out;
  /** events per read-model transaction; default CLIENTELE_PROJECTOR_REBUILD_BATCH_SIZE (25,000) */
  batchSize?: number;
  json?: boolean;
  quiet?: boolean;
  /** `replay`: go ahead although the current read models do not match the log (see refuseToErase) */
  acceptOtherLog?: boolean;
}

/**
 * `clientele audit replay`: folds the log from position 0, through the decrypting store as the
 * engine's projector reads it, into a scratch store of the live kind, each read model up to its live
 * checkpoint, and compares digests. Answers true when every read model matches. Throws
 * ReadModelsOfAnotherLogError, before any replay, when the live read models' anchor has another
 * hash in this log, and LogEndsBeforeReadModelsError when the log ends before their checkpoints:
 * findings about the log, not failures to run.
 */
export async function auditReplay(run: ReplayRun): Promise<boolean> {
  const config = readModelConfigFromEnv(run.env);
  const generations = readModelGenerations(config);
  const live = await generations.openLive();
  if (!live) throw new Error(`no live read models to compare with (${where(config)}): start the engine with the projector role first`);
  const storageConfig = storageConfigFromEnv(run.env);
  try {
    await assertConfiguredStoreExists(storageConfig.store);
  } catch (error) {
    await live.close();
    throw error;
  }
  const storage = await openStorage(storageConfig);
  let scratch: Awaited<ReturnType<typeof generations.openScratch>> | undefined;
  try {
    // a log re-chained after the fold may still fold into the same digests; the anchor says it changed
    // (a log cut before it is the LOG CUT proveReplay finds from the checkpoints)
    const anchor = await readLogAnchor(live);
    const mismatch = anchor && (await logAnchorMismatch(anchor, storage.raw));
    if (mismatch?.kind === 'other_hash') {
      const store = auditStoreAddress(storageConfig.store);
      throw new ReadModelsOfAnotherLogError(mismatch, store !== undefined ? { store } : {});
    }
    scratch = await generations.openScratch();
    const report = await proveReplay(storage.store, live, scratch.store, configuredProjections(config), {
      batchSize: run.batchSize ?? config.rebuildBatchSize,
      ...(run.quiet ? {} : { onProgress: (position: number) => run.stderr.write(`replay: folded up to position ${position}\n`) }),
    });
    if (run.json) run.stdout.write(`${JSON.stringify({ ok: report.every((r) => r.match), readModels: report })}\n`);
    else printComparison(report, run.stdout);
    return report.every((r) => r.match);
  } finally {
    await scratch?.discard();
    await live.close();
    await storage.close();
  }
}

/**
 * `clientele replay`: the operator's rebuild. Folds the whole log into a fresh generation, makes it
 * the one the engine opens next, and prints each read model's digest: the same log always gives
 * the same digests. A running engine notices the new pointer, catches the generation up and
 * serves it (EngineReadModels.followPromoted); one started later resumes from its checkpoints.
 */
export async function operatorReplay(run: ReplayRun): Promise<void> {
  const config = readModelConfigFromEnv(run.env);
  const generations = readModelGenerations(config);
  const storageConfig = storageConfigFromEnv(run.env);
  // a replay reads the log it is given: a mistyped data directory must not become a new, empty store with a new master key
  await assertConfiguredStoreExists(storageConfig.store);
  const storage = await openStorage(storageConfig);
  try {
    // before anything is written: the generation a replay replaces may be the only witness of the log it folded
    await refuseToErase(config, storage.raw, auditStoreAddress(storageConfig.store), run);
    const fresh = await generations.openFresh();
    try {
      const projections = configuredProjections(config);
      const replayed = await replayProjections(storage.store, fresh, projections, {
        batchSize: run.batchSize ?? config.rebuildBatchSize,
        ...(run.quiet ? {} : { onProgress: (position: number) => run.stderr.write(`replay: folded up to position ${position}\n`) }),
      });
      const digests = await Promise.all(projections.map((p) => digest(fresh, p)));
      await generations.promote(fresh);
      const rows = replayed.map((r, i) => ({ ...r, digest: digests[i] ?? '' }));
      if (run.json) run.stdout.write(`${JSON.stringify({ readModels: rows })}\n`);
      else {
        for (const r of rows) run.stdout.write(`${r.name} v${r.version}: ${r.eventsRead} events read up to position ${r.position}, digest ${r.digest}\n`);
        run.stdout.write(`replayed into a new generation (${where(config)}); a running engine catches it up and serves it within seconds, or serves it from its next start\n`);
      }
    } finally {
      await fresh.close();
    }
  } finally {
    await storage.close();
  }
}

/**
 * The current read models record the position and hash of the last event they folded. When this
 * log has no event there, or another hash, they were folded from another log, or this log was
 * altered or cut after they folded it; a replay would replace them, and with them the one witness
 * inside the system of what the log held. Refused unless `acceptOtherLog`, with the command that
 * checks the log; with it, said on stderr.
 */
async function refuseToErase(
  config: ReturnType<typeof readModelConfigFromEnv>,
  log: Pick<EventStore, 'readAll' | 'headPosition'>,
  auditStore: string | undefined,
  run: ReplayRun,
): Promise<void> {
  // read-only: a refused replay leaves every file and schema as it found them
  const current = await readReadModelsAnchor(configuredReadModels(config), config.kind === 'sqlite' ? 'CLIENTELE_DATA_DIR' : 'CLIENTELE_READ_MODELS_PG_SCHEMA');
  const mismatch = current?.anchor && (await logAnchorMismatch(current.anchor, log));
  if (!current || !mismatch) return;
  const explained = logAnchorMismatchMessage(mismatch, { ...(auditStore !== undefined ? { store: auditStore } : {}), refusedBy: 'replay' });
  if (!run.acceptOtherLog) throw new Error(`replay refused, nothing was written: ${explained}. The current read models: ${current.where}`);
  run.stderr.write(
    `replay: --accept-other-log: replacing read models that do not match this log (${current.where}; position ${mismatch.anchor.position}, hash ${mismatch.anchor.hash}): ` +
      'the engine removes them once it serves the new generation\n',
  );
}

function where(config: ReturnType<typeof readModelConfigFromEnv>): string {
  return config.kind === 'sqlite' ? config.dir : `PostgreSQL schemas ${config.schema}_g<n>`;
}

function printComparison(report: readonly ReplayComparison[], out: Out): void {
  for (const r of report) {
    out.write(
      `${r.name}: ${r.eventsRead} events read (up to live position ${r.position})\n` +
        `  digest live     ${r.liveDigest}\n` +
        `  digest replayed ${r.replayedDigest}\n` +
        `  ${r.match ? 'match' : 'MISMATCH'}\n`,
    );
    if (r.liveVersion !== undefined && r.liveVersion !== r.version) {
      out.write(`  the live read model was folded by version ${r.liveVersion} of the projection, this code is version ${r.version}\n`);
    }
    const d = r.firstDifference;
    if (d) {
      out.write(
        `  first differing record: table ${d.table}, key ${JSON.stringify(d.key)}\n` +
          `    live     ${d.live ? JSON.stringify(d.live) : '(no such row)'}\n` +
          `    replayed ${d.replayed ? JSON.stringify(d.replayed) : '(no such row)'}\n`,
      );
    }
  }
  const bad = report.filter((r) => !r.match).length;
  out.write(bad === 0 ? `all ${report.length} read models match the log\n` : `${bad} of ${report.length} read models differ from the log\n`);
}
