import type { CommandService } from '@clientele/application';
import type { EventStore } from '@clientele/event-store';
import type { TestingModule } from '@nestjs/testing';

/**
 * Engines for specs: the application module over a given store, without the referral process
 * manager, each answered as its CommandService; `closeAll()` (in an afterEach) closes every one.
 * NestJS and the application are loaded on first use, so specs that import this library for
 * anything else do not load them.
 */
export class SpecEngines {
  private readonly apps: TestingModule[] = [];

  /** `closeOnShutdown`: whether closing this engine closes the store too (false for a second engine on a shared store) */
  async commands(store: EventStore, closeOnShutdown: boolean): Promise<CommandService> {
    const { Test } = await import('@nestjs/testing');
    const { ClienteleModule, CommandService } = await import('@clientele/application');
    const app = await Test.createTestingModule({
      imports: [ClienteleModule.forRoot({ store, processManager: false, closeOnShutdown })],
    }).compile();
    await app.init();
    this.apps.push(app);
    return app.get(CommandService);
  }

  /** the module of the `index`-th engine started (from 0), to reach its other providers */
  module(index: number): TestingModule {
    const app = this.apps[index];
    if (!app) throw new Error(`spec engines: no engine ${index}, ${this.apps.length} started`);
    return app;
  }

  async closeAll(): Promise<void> {
    for (const app of this.apps.splice(0)) await app.close();
  }
}
