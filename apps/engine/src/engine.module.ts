import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Module, type DynamicModule, type ModuleMetadata } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ClienteleModule, SqliteCheckpointStore } from '@clientele/application';
import { SqliteEventStore } from '@clientele/event-store';
import { CommandsController } from './commands.controller';
import { CustomersController } from './customers.controller';
import type { EngineConfig } from './engine.config';
import { ENGINE_CONFIG } from './engine.tokens';
import { OperationsController } from './operations.controller';
import { ProblemDetailsFilter } from './problem-details';

/** The engine's store file inside the data directory: events, checkpoints and the customer index. */
export const storeFile = (config: EngineConfig): string => join(config.dataDir, 'clientele.sqlite');

/**
 * The HTTP engine. `imports` lets the deployment add projections, the Kafka relay or ingest: they
 * see EVENT_STORE, CommandService and ClienteleMetrics because ClienteleModule is global.
 */
@Module({})
export class EngineModule {
  static forRoot(config: EngineConfig, imports: ModuleMetadata['imports'] = []): DynamicModule {
    return {
      module: EngineModule,
      imports: [
        ClienteleModule.forRoot({
          store: () => {
            mkdirSync(config.dataDir, { recursive: true });
            return new SqliteEventStore({ file: storeFile(config), durability: config.durability });
          },
          checkpoints: () => {
            mkdirSync(config.dataDir, { recursive: true });
            return new SqliteCheckpointStore({ file: storeFile(config), durability: config.durability });
          },
          policy: config.policy,
          batchConcurrency: config.batchConcurrency,
          processManager: config.processManager,
        }),
        ...imports,
      ],
      controllers: [CommandsController, CustomersController, OperationsController],
      providers: [{ provide: ENGINE_CONFIG, useValue: config }, { provide: APP_FILTER, useClass: ProblemDetailsFilter }],
    };
  }
}
