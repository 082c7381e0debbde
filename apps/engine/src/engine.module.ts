import { Module, type DynamicModule, type ModuleMetadata } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ClienteleModule, type OpenedStorage } from '@clientele/application';
import { CommandsController } from './commands.controller';
import { CustomersController } from './customers.controller';
import type { EngineConfig } from './engine.config';
import { EngineReadModels } from './engine-read-models';
import { EngineRuntime } from './engine.runtime';
import { ReadModelsController } from './read-models.controller';
import { StatisticsController } from './statistics.controller';
import { ENGINE_CONFIG, ENGINE_STORAGE } from './engine.tokens';
import { OperationsController } from './operations.controller';
import { ProblemDetailsFilter } from './problem-details';

/**
 * The HTTP engine. `imports` lets the deployment add projections, the Kafka relay or ingest: they
 * see EVENT_STORE, CommandService and ClienteleMetrics because ClienteleModule is global.
 */
@Module({})
export class EngineModule {
  static forRoot(config: EngineConfig, storage: OpenedStorage, imports: ModuleMetadata['imports'] = []): DynamicModule {
    return {
      module: EngineModule,
      imports: [
        ClienteleModule.forRoot({
          store: storage.store,
          checkpoints: storage.checkpoints,
          policy: config.policy,
          batchConcurrency: config.batchConcurrency,
          processManager: config.processManager,
        }),
        ...imports,
      ],
      controllers: [CommandsController, CustomersController, ReadModelsController, StatisticsController, OperationsController],
      providers: [
        { provide: ENGINE_CONFIG, useValue: config },
        { provide: ENGINE_STORAGE, useValue: storage },
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        EngineRuntime,
        EngineReadModels,
      ],
    };
  }
}
