import { logLevel } from 'kafkajs';
import { kafkajsThrough } from './engine.runtime';

function recordingLogger(): { lines: [string, unknown][]; logger: Parameters<typeof kafkajsThrough>[0] } {
  const lines: [string, unknown][] = [];
  return {
    lines,
    logger: {
      error: (entry: unknown) => void lines.push(['error', entry]),
      warn: (entry: unknown) => void lines.push(['warn', entry]),
      log: (entry: unknown) => void lines.push(['log', entry]),
      debug: (entry: unknown) => void lines.push(['debug', entry]),
    },
  };
}

const entry = (message: string, extra: Record<string, unknown> = {}) => ({ message, timestamp: '2026-12-01T04:56:57.264Z', logger: 'kafkajs', ...extra });

describe('kafkajs log entries through the engine logger', () => {
  it('given entries of each level, then each goes to the method of its level with its fields, its namespace and its message, without kafkajs\' own timestamp and name', () => {
    const { lines, logger } = recordingLogger();
    const write = kafkajsThrough(logger)(logLevel.DEBUG);

    write({ namespace: 'BrokerPool', level: logLevel.ERROR, label: 'ERROR', log: entry('Failed to connect to seed broker', { retryCount: 1 }) });
    write({ namespace: 'Producer', level: logLevel.WARN, label: 'WARN', log: entry('retrying') });
    write({ namespace: 'Consumer', level: logLevel.INFO, label: 'INFO', log: entry('joined', { groupId: 'g' }) });
    write({ namespace: 'Connection', level: logLevel.DEBUG, label: 'DEBUG', log: entry('request') });

    expect(lines).toEqual([
      ['error', { retryCount: 1, namespace: 'BrokerPool', msg: 'Failed to connect to seed broker' }],
      ['warn', { namespace: 'Producer', msg: 'retrying' }],
      ['log', { groupId: 'g', namespace: 'Consumer', msg: 'joined' }],
      ['debug', { namespace: 'Connection', msg: 'request' }],
    ]);
  });

  it('given the same entry again and again, as kafkajs writes while a broker is down, then it is written once a window, the next line saying how many were left out', () => {
    const { lines, logger } = recordingLogger();
    let clock = 0;
    const write = kafkajsThrough(logger, { repeatWindowMs: 60_000, now: () => clock })(logLevel.WARN);
    const refused = (retryCount: number) => ({ namespace: 'BrokerPool', level: logLevel.ERROR, label: 'ERROR', log: entry('Failed to connect to seed broker: ECONNREFUSED', { retryCount }) });

    write(refused(0));
    for (let i = 1; i <= 5; i++) {
      clock += 1_000;
      write(refused(i));
    }
    // another message, another namespace or another level is not a repeat
    write({ namespace: 'Connection', level: logLevel.ERROR, label: 'ERROR', log: entry('Failed to connect to seed broker: ECONNREFUSED') });
    write({ namespace: 'BrokerPool', level: logLevel.WARN, label: 'WARN', log: entry('Failed to connect to seed broker: ECONNREFUSED') });
    write({ namespace: 'BrokerPool', level: logLevel.ERROR, label: 'ERROR', log: entry('Connection timeout') });
    // still inside the window of the first line (written at 0)
    clock = 59_999;
    write(refused(6));
    clock = 60_000;
    write(refused(7));
    clock = 60_500;
    write(refused(8));
    clock = 200_000;
    write(refused(9));

    expect(lines).toEqual([
      ['error', { retryCount: 0, namespace: 'BrokerPool', msg: 'Failed to connect to seed broker: ECONNREFUSED' }],
      ['error', { namespace: 'Connection', msg: 'Failed to connect to seed broker: ECONNREFUSED' }],
      ['warn', { namespace: 'BrokerPool', msg: 'Failed to connect to seed broker: ECONNREFUSED' }],
      ['error', { namespace: 'BrokerPool', msg: 'Connection timeout' }],
      ['error', { retryCount: 7, namespace: 'BrokerPool', msg: 'Failed to connect to seed broker: ECONNREFUSED', repeatedSinceLastLine: 6 }],
      ['error', { retryCount: 9, namespace: 'BrokerPool', msg: 'Failed to connect to seed broker: ECONNREFUSED', repeatedSinceLastLine: 1 }],
    ]);
  });

  it('given more distinct entries than it remembers, then the oldest are forgotten and written again when they recur', () => {
    const { lines, logger } = recordingLogger();
    const write = kafkajsThrough(logger, { now: () => 0 })(logLevel.WARN);
    const warn = (message: string) => write({ namespace: 'Consumer', level: logLevel.WARN, label: 'WARN', log: entry(message) });
    for (let i = 0; i < 501; i++) warn(`message ${i}`);
    expect(lines).toHaveLength(501);
    // the first was forgotten to make room for the 501st; the last is still remembered
    warn('message 0');
    warn('message 500');
    expect(lines).toHaveLength(502);
    expect(lines[501]).toEqual(['warn', { namespace: 'Consumer', msg: 'message 0' }]);
  });
});
