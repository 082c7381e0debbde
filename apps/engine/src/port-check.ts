import { createServer } from 'node:net';
import { ConfigError } from './engine.config';

/** Listens on `port` for a moment and lets go; a port that cannot be taken is a ConfigError naming `variable`. */
export async function assertPortFree(port: number, variable: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => reject(portError(error, port, variable) ?? error));
    probe.listen(port, () => probe.close(() => resolve()));
  });
}

/** A listen failure as the setting to change, or undefined for another failure. */
function portError(error: NodeJS.ErrnoException, port: number, variable: string): ConfigError | undefined {
  if (error.code === 'EADDRINUSE') return new ConfigError(variable, 'a port no other process listens on (this one is in use)', String(port));
  if (error.code === 'EACCES') return new ConfigError(variable, 'a port this user may listen on (1024 or above without privileges)', String(port));
  return undefined;
}
