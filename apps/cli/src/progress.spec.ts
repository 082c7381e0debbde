import { Writable } from 'node:stream';
import { createProgress } from './progress';

class Captured extends Writable {
  text = '';
  isTTY?: boolean;
  columns = 120;
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('progress on stderr', () => {
  it('prints an import line with the percentage of bytes, lines, rate and rejects', () => {
    // given a progress over a 1,000-byte file on a pipe
    const stream = new Captured();
    const progress = createProgress({ total: 1000, stream, intervalMs: 0 });

    // when it is updated and stopped
    progress.update({ done: 250, lines: 10, rejected: 1 });
    progress.stop({ done: 1000, lines: 40, rejected: 2 });

    // then each line says how far, how many lines and how many were refused
    const lines = stream.text.trim().split('\n');
    expect(lines[0]).toMatch(/^import: 25\.0% 10 lines, \d+ lines\/s, 1 rejected, \d+\.\ds$/);
    expect(lines[1]).toMatch(/^import: 100\.0% 40 lines, \d+ lines\/s, 2 rejected, \d+\.\ds$/);
  });

  it('prints counted work as done/total with a rate, taking the total when it is learnt', () => {
    // given a progress of events whose total is not known at the start
    const stream = new Captured();
    const progress = createProgress({ total: 0, stream, intervalMs: 60_000, label: 'migrate', unit: 'events' });

    // when updates come faster than the interval, then the work ends
    progress.update({ done: 10, total: 40 });
    progress.stop({ done: 40, total: 40 });

    // then only the final line is printed
    expect(stream.text).toMatch(/^migrate: 40\/40 events \(100\.0%\), \d+ events\/s, \d+\.\ds\n$/);
  });

  it('draws a bar on a terminal', () => {
    // given a terminal
    const stream = new Captured();
    stream.isTTY = true;
    const progress = createProgress({ total: 0, stream, label: 'export', unit: 'events' });

    // when the work runs to its end
    progress.update({ done: 5, total: 10 });
    progress.stop({ done: 10, total: 10 });

    // then the bar shows the label and the counted events
    expect(stream.text).toContain('export [');
    expect(stream.text).toContain('10/10 events');
  });
});
