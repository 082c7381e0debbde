import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { bootstrapEngine } from './bootstrap';
import { loadEngineConfig } from './engine.config';

/** An engine for the specs, in a data directory of its own. */
export interface TestEngine {
  dir: string;
  app: NestExpressApplication;
  http: ReturnType<typeof request>;
  /** stops the engine and deletes its directory */
  close(): Promise<void>;
}

/**
 * Starts the whole engine on a fresh temporary data directory (`clientele-<name>-…`), durability
 * `normal` and no logs, with `env` on top of that.
 */
export async function startTestEngine(name: string, env: Record<string, string> = {}): Promise<TestEngine> {
  const dir = mkdtempSync(join(tmpdir(), `clientele-${name}-`));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const app = await bootstrapEngine(loadEngineConfig({ CLIENTELE_DATA_DIR: dir, CLIENTELE_DURABILITY: 'normal', LOG_LEVEL: 'silent', ...env }));
    return {
      dir,
      app,
      http: request(app.getHttpServer()),
      async close() {
        await app.close();
        remove();
      },
    };
  } catch (error) {
    remove();
    throw error;
  }
}
