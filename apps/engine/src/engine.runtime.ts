import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { ClienteleMetrics, CommandService, ingestBatchDispatch, type OpenedStorage } from '@clientele/application';
import { kafkaConfigFromEnv, startMessaging, type MessagingRuntime, type MessagingStats } from '@clientele/messaging';
import type { EngineConfig } from './engine.config';
import { EngineReadModels } from './engine-read-models';
import { ENGINE_CONFIG, ENGINE_STORAGE } from './engine.tokens';

/**
 * The engine's background parts, started after the application is up and stopped before the store
 * closes: the Kafka relay (reads the raw log; personal fields never leave encrypted or at all) and
 * the Kafka ingest (commands go through the same CommandService as HTTP, each fetched batch through
 * its bulk path).
 */
@Injectable()
export class EngineRuntime implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('EngineRuntime');
  private messaging?: MessagingRuntime;

  constructor(
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
    @Inject(ENGINE_STORAGE) private readonly storage: OpenedStorage,
    private readonly commands: CommandService,
    private readonly metrics: ClienteleMetrics,
    private readonly readModels: EngineReadModels,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const roles = this.config.roles;
    if (roles.relay || roles.ingest) {
      // profile snapshots need the projector's batches, so they come from a process running both
      const profiles = roles.relay ? this.readModels.profileSource() : undefined;
      this.messaging = await startMessaging({
        store: this.storage.raw,
        dispatchBatch: ingestBatchDispatch(this.commands),
        checkpoints: this.storage.checkpoints,
        config: kafkaConfigFromEnv(),
        roles: { relay: roles.relay, ingest: roles.ingest },
        registry: this.metrics.registry,
        ...(profiles && { profiles }),
        logger: { warn: (detail: object, message: string) => this.logger.warn({ ...detail, msg: message }) },
      });
      this.logger.log(
        `Kafka ${[roles.relay && 'relay', profiles && 'profile snapshots', roles.ingest && 'ingest'].filter(Boolean).join(', ')} started`,
      );
    }
  }

  async messagingStats(): Promise<MessagingStats | undefined> {
    return this.messaging?.stats();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.messaging?.stop();
    this.messaging = undefined;
  }
}
