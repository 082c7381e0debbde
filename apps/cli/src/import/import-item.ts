import { createReadStream, type ReadStream } from 'node:fs';
import { isUtf8 } from 'node:buffer';

import type { FieldError } from '../command-sink';

/**
 * What a file reader yields: either something to validate and send (with the line it came from, so
 * refusals can name it) or a line already refused while parsing.
 */
export type ImportItem =
  /** `rows`: the lines the command was made of, when more than its own (a merged CDNOW order) */
  | { kind: 'command'; line: number; input: unknown; rows?: number[] }
  | { kind: 'reject'; line: number; reason: string; errors?: LineError[] } & Withholding;

/**
 * A CDNOW customer-day is imported whole or not at all: its refused rows `withhold` its good rows,
 * which are refused as `withheldBy` them (line numbers both), so each line is reported once and
 * either side names the other.
 */
export interface Withholding {
  withheldBy?: number[];
  withholds?: number[];
}

/**
 * One refused value of a line: the field (a CDNOW column, an envelope path), what would be accepted
 * and, when the reader has it, the text the line holds there (CDNOW rows; the shared validator of
 * envelopes names field and expectation only).
 */
export interface LineError extends FieldError {
  found?: string;
}

export interface NumberedLine {
  line: number;
  text: string;
  /** the line's bytes are not UTF-8 (Latin-1 saved as is, say): `text` holds U+FFFD where they were */
  notUtf8?: true;
}

/** Line numbers for a reason: the first few, then how many more. */
export function listLines(lines: readonly number[]): string {
  const shown = lines.slice(0, 10).join(', ');
  return lines.length > 10 ? `${shown} and ${lines.length - 10} more` : shown;
}

/** The refusal of a line whose bytes are not UTF-8: read as text it would be stored with U+FFFD in their place. */
export const NOT_UTF8 = 'not UTF-8 text: the line holds bytes that are not UTF-8 (Latin-1, say), which would be stored as U+FFFD; save the file as UTF-8';

/** A file read line by line with constant memory; `bytesRead` feeds the progress bar. */
export interface LineSource extends AsyncIterable<NumberedLine> {
  readonly stream: ReadStream;
}

export const openLines = (path: string): LineSource => {
  // bytes, split at LF (a CR before it dropped), each line checked for UTF-8 before it is decoded
  const stream = createReadStream(path, { highWaterMark: 1 << 16 });
  return {
    stream,
    async *[Symbol.asyncIterator]() {
      let line = 0;
      let rest: Buffer = Buffer.alloc(0);
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
        let start = 0;
        for (let end = data.indexOf(LF, start); end !== -1; end = data.indexOf(LF, start)) {
          line += 1;
          yield decodeLine(line, data.subarray(start, end));
          start = end + 1;
        }
        rest = data.subarray(start);
      }
      if (rest.length > 0) yield decodeLine(line + 1, rest);
    },
  };
};

const LF = 0x0a;
const CR = 0x0d;

function decodeLine(line: number, bytes: Buffer): NumberedLine {
  const text = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.subarray(0, bytes.length - 1) : bytes;
  return isUtf8(text) ? { line, text: text.toString('utf8') } : { line, text: text.toString('utf8'), notUtf8: true };
}

