import { createServer, type Server } from 'node:net';
import { ConfigError } from './engine.config';
import { assertPortFree } from './port-check';

describe('the port check made before the engine opens its store', () => {
  let held: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (held ? held.close(() => resolve()) : resolve())));

  it('given a port another process listens on, then it is a configuration error naming the variable and the port', async () => {
    held = createServer();
    await new Promise<void>((resolve) => held!.listen(0, resolve));
    const port = (held.address() as { port: number }).port;

    const refused = await assertPortFree(port, 'PORT').catch((error: unknown) => error);

    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as Error).message).toBe(`PORT: expected a port no other process listens on (this one is in use), got "${port}"`);
  });

  it('given a free port, then it lets it go again for the engine to take', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    await assertPortFree(port, 'PORT');

    held = createServer();
    await new Promise<void>((resolve, reject) => held!.once('error', reject).listen(port, resolve));
  });
});
