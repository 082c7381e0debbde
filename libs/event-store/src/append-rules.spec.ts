import { revisionMatches } from './append-rules';

describe('expected revisions', () => {
  it.each([
    ['any', undefined, true],
    ['any', 3, true],
    ['no_stream', undefined, true],
    ['no_stream', 0, false],
    ['stream_exists', 0, true],
    ['stream_exists', undefined, false],
    [2, 2, true],
    [2, 3, false],
    [0, undefined, false],
  ] as const)('expected %s with last revision %s matches: %s', (expected, current, matches) => {
    expect(revisionMatches(expected, current)).toBe(matches);
  });
});
