import { numberPlaceholders } from './postgres-read-model.store';

describe('numberPlaceholders', () => {
  it('numbers each ? in order and leaves those inside quoted text and identifiers alone', () => {
    expect(numberPlaceholders(`SELECT '?', "a?b" FROM t WHERE x = ? AND y IN (?, ?) AND z = 'it''s ?'`)).toBe(
      `SELECT '?', "a?b" FROM t WHERE x = $1 AND y IN ($2, $3) AND z = 'it''s ?'`,
    );
  });
});
