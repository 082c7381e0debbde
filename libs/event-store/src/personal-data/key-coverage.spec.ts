import { storedEvents } from '@clientele/testing';
import { keyCoverageWatch } from './key-coverage';

const sealed = { $personal: 'enc:v1:AAAA' };
const erasedMark = { $personal: 'erased' };

describe('watching a verification walk for personal data whose key is missing', () => {
  // given a log: ann (key kept), bob (key row gone, three encrypted events), cy (key gone but erased in the log),
  // dee (no personal data), eve (only the mark written after an erasure)
  const log = storedEvents([
    { type: 'ProspectRegistered', data: { customerId: 'ann', personal: sealed } },
    { type: 'ProspectRegistered', data: { customerId: 'bob', personal: sealed } },
    { type: 'ProspectRegistered', data: { customerId: 'cy', personal: sealed } },
    { type: 'ProspectRegistered', data: { customerId: 'dee', source: 'web' } },
    { type: 'ProfileUpdated', data: { customerId: 'bob', personal: sealed } },
    { type: 'PersonalDataErased', data: { customerId: 'cy' } },
    { type: 'TouchpointRecorded', data: { customerId: 'bob', note: sealed } },
    { type: 'ProfileUpdated', data: { customerId: 'eve', personal: erasedMark } },
  ]);

  it('names each customer whose encrypted data has no key row, once, with their first event and how many hold it; an erasure in the log excuses the row', async () => {
    const lookups: string[][] = [];
    const watch = keyCoverageWatch(
      {
        present: async (ids) => {
          lookups.push([...ids]);
          return new Set(ids.filter((id) => id === 'ann'));
        },
      },
      // two customers a query, so the walk crosses several
      { batchSize: 2 },
    );

    const walked = [];
    for await (const e of watch.tap(log)) walked.push(e.position);
    const missing = await watch.missing();

    expect(walked).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(missing).toEqual([{ kind: 'key_missing', customerId: 'bob', streamId: 'customer-bob', position: 2, eventId: log[1]!.id, encryptedEvents: 3 }]);
    // only customers with encrypted data are looked up, in batches, and one found missing is not asked for again
    expect(lookups).toEqual([['ann', 'bob'], ['cy']]);
  });

  it('nothing is missing when every such customer has a row', async () => {
    const watch = keyCoverageWatch({ present: async (ids) => new Set(ids) });
    for await (const _ of watch.tap(log)) void _;
    expect(await watch.missing()).toEqual([]);
  });
});
