import type { ImportItem, NumberedLine } from './import-item';

/** One command envelope per line; blank lines are allowed and ignored. */
export async function* readNdjsonCommands(lines: AsyncIterable<NumberedLine>): AsyncGenerator<ImportItem> {
  for await (const { line, text } of lines) {
    const trimmed = text.trim();
    if (trimmed === '') continue;
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
