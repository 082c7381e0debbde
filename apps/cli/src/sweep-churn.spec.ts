import { PassThrough } from 'node:stream';
import { runCli } from './cli.program';
import type { CliContext, Engine } from './cli-context';

const captured = () => {
  const stream = new PassThrough() as PassThrough & NodeJS.WriteStream;
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
};

/** The CLI over an engine whose sweep answers `report`; answers the exit code, the output and the date the sweep was asked for. */
async function sweep(report: Awaited<ReturnType<NonNullable<Engine['sweepChurn']>>>) {
  const out = captured();
  const err = captured();
  const asked: string[] = [];
  const engine: Engine = {
    sink: { execute: () => Promise.reject(new Error('not used')) } as unknown as Engine['sink'],
    readStream: async () => [],
    sweepChurn: async (asOf) => {
      asked.push(asOf);
      return report;
    },
    close: async () => undefined,
  };
  const context: CliContext = { stdout: out.stream, stderr: err.stream, openEngine: async () => engine };
  const code = await runCli(['sweep-churn', '--as-of', '2026-07-01'], context);
  return { code, stdout: out.text(), stderr: err.text(), asked };
}

describe('clientele sweep-churn', () => {
  it('prints what the sweep did and exits 0 when everyone was judged', async () => {
    const { code, stdout, stderr, asked } = await sweep({ examined: 1200, churned: 37, refused: 2, conflicts: 0 });
    expect(asked).toEqual(['2026-07-01T00:00:00.000Z']);
    expect(stdout).toBe('sweep as of 2026-07-01: 1200 customers examined, 37 churned, 2 refused, 0 not judged\n');
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('says to run it again and exits 1 when customers were not judged', async () => {
    const { code, stdout, stderr } = await sweep({ examined: 1200, churned: 35, refused: 0, conflicts: 2 });
    expect(stdout).toContain('2 not judged');
    expect(stderr).toContain('2 customers were not judged (their streams kept changing); run the same sweep again');
    expect(code).toBe(1);
  });
});
