import { NOT_UTF8, type ImportItem, type NumberedLine } from './import-item';

/** One command envelope per line; blank lines are allowed and ignored, lines that are not UTF-8 refused. */
export async function* readNdjsonCommands(lines: AsyncIterable<NumberedLine>): AsyncGenerator<ImportItem> {
  for await (const { line, text, notUtf8 } of lines) {
    const trimmed = text.trim();
    if (trimmed === '') continue;
    if (notUtf8) {
      yield { kind: 'reject', line, reason: NOT_UTF8 };
      continue;
    }
    let input: unknown;
    try {
      input = JSON.parse(trimmed);
    } catch (error) {
      yield { kind: 'reject', line, reason: `not valid JSON (${(error as Error).message})` };
      continue;
    }
    yield { kind: 'command', line, input };
  }
}
