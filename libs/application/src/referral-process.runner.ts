import {
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import {
  DomainError,
  customerStream,
  foldCustomer,
  needsReferrerLookup,
  referralCommandId,
  referralReactions,
  type CustomerEvent,
} from '@clientele/domain';
import type { EventStore, EventSubscription, StoredEvent } from '@clientele/event-store';
import type { CheckpointStore } from './checkpoint.store';
import { ClienteleMetrics } from './clientele.metrics';
import { CHECKPOINT_STORE, CLIENTELE_OPTIONS, EVENT_STORE } from './clientele.tokens';
import type { ResolvedClienteleOptions } from './clientele.options';
import { CommandService } from './command.service';
import { describeFailure, isTemporary } from './command-result';

export interface ProcessStatus {
  running: boolean;
  position: number;
  head: number;
  lag: number;
  lastError?: string;
}

/**
 * Runs the referral process manager from the durable log, not from an in-memory bus, so a crash
 * never loses a reaction: it resumes from its checkpoint, and a reaction replayed after a crash is
 * the same command (its id comes from the causing event) which the referrer's stream records once.
 * The checkpoint is saved after the reactions of an event are stored, never before.
 */
@Injectable()
export class ReferralProcessRunner {
  static readonly checkpointName = 'referral-process';
  // Events that ask for nothing are replayed harmlessly after a crash, so their checkpoint is saved
  // only every so often instead of once per event.
  private static readonly saveEvery = 256;

  private readonly logger = new Logger(ReferralProcessRunner.name);
  private subscription: EventSubscription | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private position = 0;
  private lastError: string | undefined;
  private waiters: { position: number; resolve: () => void }[] = [];

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CHECKPOINT_STORE) private readonly checkpoints: CheckpointStore,
    private readonly commands: CommandService,
    private readonly metrics: ClienteleMetrics,
  ) {}

  get running(): boolean {
    return this.loop !== undefined;
  }

  async start(): Promise<void> {
    if (this.loop) return;
    this.stopping = false;
    this.position = await this.checkpoints.load(ReferralProcessRunner.checkpointName);
    this.metrics.processPosition.set(this.position);
    // after a restart (a crash included), where it picks up: what an operator checks first
    const head = await this.store.headPosition();
    if (head > 0) this.logger.log(`referral process manager resumes after position ${this.position} of ${head} (${Math.max(0, head - this.position)} events to react to)`);
    this.loop = this.run().finally(() => {
      this.loop = undefined;
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.subscription?.close();
    await this.loop;
  }

  /** Resolves once every event stored before the call has been handled (tests, the churn sweep). */
  async catchUp(): Promise<void> {
    const head = await this.store.headPosition();
    if (this.position >= head) return;
    if (!this.running) throw new Error('the referral process manager is not running; it cannot catch up');
    await new Promise<void>((resolve) => this.waiters.push({ position: head, resolve }));
  }

  async status(): Promise<ProcessStatus> {
    const head = await this.store.headPosition();
    const lag = Math.max(0, head - this.position);
    this.metrics.processLag.set(lag);
    return {
      running: this.running,
      position: this.position,
      head,
      lag,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  private async run(): Promise<void> {
    let unsaved = 0;
    while (!this.stopping) {
      const subscription = this.store.subscribeToAll({ afterPosition: this.position, batchSize: 500 });
      this.subscription = subscription;
      try {
        for await (const event of subscription) {
          const reacted = await this.handle(event);
          this.advance(event.position);
          unsaved++;
          if (reacted || unsaved >= ReferralProcessRunner.saveEvery) {
            await this.checkpoints.save(ReferralProcessRunner.checkpointName, this.position);
            unsaved = 0;
          }
          this.lastError = undefined;
          if (this.stopping) break;
        }
      } catch (error) {
        if (this.stopping) break;
        this.lastError = error instanceof Error ? error.message : String(error);
        if (error instanceof DomainError) {
          // only a failure for now reaches here (see handle): expected while others write to the stream
          this.logger.warn(
            { code: error.code, detail: error.message, position: this.position },
            'a referral reaction could not be stored yet (its stream kept changing); trying again in a second',
          );
        } else {
          this.logger.error({ err: error, position: this.position }, 'referral process manager failed; resuming from its checkpoint');
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
      } finally {
        await subscription.close();
      }
    }
    if (unsaved > 0) await this.checkpoints.save(ReferralProcessRunner.checkpointName, this.position).catch(() => {});
  }

  /** Sends the reactions one stored event asks for; answers whether there were any. */
  private async handle(event: StoredEvent): Promise<boolean> {
    let referrer: string | undefined;
    if (needsReferrerLookup(event) && typeof event.data.customerId === 'string') {
      // The referrer is named only by the registration, the stream's first event: reading the rest
      // (a long-standing customer's whole history, decrypted) would change nothing.
      const first = await this.store.readStream(customerStream(event.data.customerId), { maxCount: 1 });
      const referee = foldCustomer(first as unknown as CustomerEvent[]);
      referrer = referee.phase === 'unknown' ? undefined : referee.referredBy;
    }
    const reactions = referralReactions(event, () => referrer);
    for (const [i, command] of reactions.entries()) {
      const commandId = i === 0 ? referralCommandId(event.id) : `${referralCommandId(event.id)}:${i}`;
      try {
        await this.commands.executeDomain(command, {
          commandId,
          correlationId: event.metadata.correlationId ?? event.metadata.commandId ?? event.id,
          causationId: event.id,
        });
      } catch (error) {
        // A verdict (a rule that says no, the reaction's id already used for other content) is the
        // same on every replay: record it and move on, or the runner would stall on it. A failure
        // that is no verdict (the referrer's stream kept changing past the handler's retries, the
        // store failed) goes to the loop, which tries the event again from the checkpoint:
        // dropping it would lose the reaction for good.
        const failure = describeFailure(error);
        if (isTemporary(failure)) throw error;
        this.logger.warn({ code: failure.code, commandId, causationId: event.id }, `referral reaction refused: ${failure.message}`);
      }
    }
    return reactions.length > 0;
  }

  private advance(position: number): void {
    this.position = position;
    this.metrics.processPosition.set(position);
    const ready = this.waiters.filter((w) => w.position <= position);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.position > position);
    for (const w of ready) w.resolve();
  }
}

/**
 * Starts the runner when the application starts. It lives in a module of its own because Nest runs
 * start hooks of global modules (CqrsModule, ClienteleModule) in no fixed order among themselves,
 * and the runner must not send a command before the CommandBus has its handlers; hooks of this
 * non-global module run after every global one.
 */
@Injectable()
export class ReferralProcessLifecycle implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(
    private readonly runner: ReferralProcessRunner,
    @Inject(CLIENTELE_OPTIONS) private readonly options: ResolvedClienteleOptions,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.options.processManager) await this.runner.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.runner.stop();
  }
}

@Module({ providers: [ReferralProcessLifecycle] })
export class ReferralProcessModule {}
