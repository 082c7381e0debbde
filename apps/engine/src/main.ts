import { bootstrapEngine } from './bootstrap';
import { ConfigError, loadEngineConfig } from './engine.config';

async function main(): Promise<void> {
  const config = loadEngineConfig();
  const app = await bootstrapEngine(config);
  if (config.roles.http) await app.listen(config.port);
}

main().catch((error: unknown) => {
  // The logger may not exist yet (bad configuration): stderr is the one place sure to be read.
  process.stderr.write(error instanceof ConfigError ? `configuration error: ${error.message}\n` : `${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
