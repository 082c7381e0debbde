import { StoreUnreachableError } from '@clientele/application';
import { WrongMasterKeyError } from '@clientele/event-store';
import { ReadModelsOfAnotherLogError } from '@clientele/projections';
import { bootstrapEngine } from './bootstrap';
import { seedDemoData } from './demo-data';
import { ConfigError, loadEngineConfig } from './engine.config';
import { assertPortFree } from './port-check';

async function main(): Promise<void> {
  const config = loadEngineConfig();
  // before the store is opened or demo data seeded: a port another process holds stops the start here
  if (config.roles.http) await assertPortFree(config.port, 'PORT');
  else if (config.opsPort !== undefined) await assertPortFree(config.opsPort, 'CLIENTELE_OPS_PORT');
  const app = await bootstrapEngine(config);
  const demo = config.demoCustomers > 0 ? await seedDemoData(app, config.demoCustomers) : undefined;
  if (!config.roles.http) {
    if (config.opsPort !== undefined) {
      await app.listen(config.opsPort);
      process.stdout.write(`Clientele (${describeRoles(config)}) answers /health and /metrics on http://localhost:${config.opsPort}\n`);
    }
    return;
  }
  await app.listen(config.port);
  const base = `http://localhost:${config.port}`;
  const sample = demo?.sampleCustomerId ?? '<customerId>';
  // the one message a newcomer needs: where to look next
  process.stdout.write(
    [
      '',
      `Clientele is running on ${base}  (store: ${config.store}, data: ${config.dataDir})`,
      demo?.seeded ? `  seeded demo data: ${demo.commands} commands, ${demo.head} events` : `  events stored: ${demo?.head ?? 'see /health'}`,
      `  API docs         ${base}/docs`,
      `  a customer       ${base}/customers/${sample}`,
      `  their profile    ${base}/customers/${sample}/profile`,
      `  their history    ${base}/customers/${sample}/events`,
      `  profiles         ${base}/profiles?sort=revenue&direction=desc&limit=10`,
      `  referral graph   ${base}/referrals/top-advocates`,
      `  health, metrics  ${base}/health  ${base}/metrics`,
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  // The logger may not exist yet (bad configuration): stderr is the one place sure to be read.
  const known =
    error instanceof ConfigError
      ? `configuration error: ${error.message}`
      : error instanceof StoreUnreachableError || error instanceof WrongMasterKeyError || error instanceof ReadModelsOfAnotherLogError
        ? `cannot start: ${error.message}`
        : undefined;
  process.stderr.write(`${known ?? String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});

function describeRoles(config: ReturnType<typeof loadEngineConfig>): string {
  return Object.entries(config.roles)
    .filter(([, on]) => on)
    .map(([role]) => role)
    .join(', ') || 'no role';
}
