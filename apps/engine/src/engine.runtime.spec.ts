import { logLevel } from 'kafkajs';
import { kafkajsThrough } from './engine.runtime';

describe('kafkajs log entries through the engine logger', () => {
  it('given entries of each level, then each goes to the method of its level with its fields, its namespace and its message, without kafkajs\' own timestamp and name', () => {
    const lines: [string, unknown][] = [];
    const logger = {
      error: (entry: unknown) => void lines.push(['error', entry]),
      warn: (entry: unknown) => void lines.push(['warn', entry]),
      log: (entry: unknown) => void lines.push(['log', entry]),
      debug: (entry: unknown) => void lines.push(['debug', entry]),
    };
    const write = kafkajsThrough(logger)(logLevel.DEBUG);
    const entry = (message: string, extra: Record<string, unknown> = {}) => ({ message, timestamp: '2026-12-01T04:56:57.264Z', logger: 'kafkajs', ...extra });

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
});
