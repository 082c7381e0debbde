import type { LoggerService } from '@nestjs/common';
import pino, { type Logger } from 'pino';

/**
 * Nest's LoggerService over pino: one JSON object a line in production (for log shippers), a short
 * readable line otherwise. Libraries log through Nest's `Logger`, which lands here.
 */
export class EngineLogger implements LoggerService {
  readonly pino: Logger;

  constructor(options: { level: string; json: boolean }) {
    this.pino = pino(
      { level: options.level, base: { service: 'clientele-engine' }, timestamp: pino.stdTimeFunctions.isoTime },
      options.json ? pino.destination(1) : readableLines(),
    );
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.write('fatal', message, rest);
  }

  /**
   * Nest passes (message, ...optional, context) where the last string is the context; our code
   * passes (fields, message, context). Both end up as one structured record.
   */
  private write(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal', message: unknown, rest: unknown[]): void {
    const args = [...rest];
    const context = typeof args[args.length - 1] === 'string' ? (args.pop() as string) : undefined;
    if (message !== null && typeof message === 'object' && !(message instanceof Error)) {
      const text = typeof args[0] === 'string' ? args[0] : undefined;
      this.pino[level]({ ...(message as object), context }, text);
      return;
    }
    if (message instanceof Error) {
      this.pino[level]({ err: message, context }, message.message);
      return;
    }
    const stack = typeof args[0] === 'string' && level === 'error' ? args[0] : undefined;
    this.pino[level]({ context, ...(stack ? { stack } : {}) }, String(message));
  }
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** A development destination: `10:00:00.000 INFO  [Context] message {fields}`. */
function readableLines(): { write(line: string): void } {
  return {
    write(line: string): void {
      try {
        const { level, time, msg, context, service: _service, pid: _pid, hostname: _host, ...fields } = JSON.parse(line) as Record<
          string,
          unknown
        >;
        const clock = typeof time === 'string' ? time.slice(11, 23) : '';
        const extra = Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
        const where = typeof context === 'string' ? ` [${context}]` : '';
        process.stdout.write(`${clock} ${(LEVELS[Number(level)] ?? 'LOG').padEnd(5)}${where} ${String(msg ?? '')}${extra}\n`);
      } catch {
        process.stdout.write(line);
      }
    },
  };
}
