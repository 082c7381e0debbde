import { createReadStream, type ReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

import type { FieldError } from '../command-sink';

/**
 * What a file reader yields: either something to validate and send (with the line it came from, so
 * refusals can name it) or a line already refused while parsing.
 */
export type ImportItem =
  | { kind: 'command'; line: number; input: unknown }
  | { kind: 'reject'; line: number; reason: string; errors?: FieldError[] };

export interface NumberedLine {
  line: number;
  text: string;
}

/** A file read line by line with constant memory; `bytesRead` feeds the progress bar. */
export interface LineSource extends AsyncIterable<NumberedLine> {
  readonly stream: ReadStream;
}

export const openLines = (path: string): LineSource => {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 16 });
  const reader = createInterface({ input: stream, crlfDelay: Infinity });
  return {
    stream,
    async *[Symbol.asyncIterator]() {
      let line = 0;
      for await (const text of reader) {
        line += 1;
        yield { line, text };
      }
    },
  };
};

