import {
  CommandEnvelopeSchema,
  CommandEnvelopeShapeSchema,
  DeadLetterSchema,
  EventEnvelopeSchema,
  LifecycleTransitionSchema,
  ProfileSnapshotSchema,
  PublicSchemas,
  ReferralEdgeSchema,
} from './schemas';
import { formatIssues, validateAgainstSchema, type JsonSchema } from './schema-validation';
import type { DeadLetterMessage, EventEnvelope, LifecycleTransitionMessage, ReferralEdgeMessage } from './messages';

const event: EventEnvelope = {
  id: '0b7c7a1e-2f1e-4c3e-9d55-000000000001',
  type: 'PurchaseRecorded',
  schemaVersion: 1,
  streamId: 'customer-c1',
  revision: 3,
  position: 42,
  occurredAt: '2026-01-31T10:00:00.000Z',
  recordedAt: '2026-01-31T10:00:01.000Z',
  correlationId: 'corr-1',
  data: { customerId: 'c1', orderId: 'o1', totalMinor: 1250 },
};

describe('public message schemas', () => {
  it('accept a well-formed message of each kind', () => {
    // given one sample of every published message
    const transition: LifecycleTransitionMessage = {
      ...event,
      type: 'CustomerConverted',
      data: { customerId: 'c1', occurredAt: event.occurredAt },
      customerId: 'c1',
      toStage: 'customer',
    };
    const edge: ReferralEdgeMessage = {
      eventId: 'e9', type: 'ReferralConverted', referrerId: 'c1', refereeId: 'c2', status: 'converted', orderId: 'o7',
      occurredAt: event.occurredAt, position: 9,
    };
    const deadLetter: DeadLetterMessage = {
      reason: 'not JSON', value: Buffer.from('{oops').toString('base64'), valueBytes: 5, valueTruncated: false, key: null,
      sourceTopic: 'clientele.commands', sourcePartition: 0, sourceOffset: '17', deadLetteredAt: event.recordedAt,
    };
    // a profile as the engine publishes it: GET /customers/:id/profile without the personal fields
    const snapshotProfile = {
      customerId: 'c1', erased: false, preferences: {}, consents: {},
      habits: { topCategories: [{ category: 'books', quantity: 2 }], topProducts: [], ordersPer30Days: 1.5, usualWeekday: 'monday' },
      stage: 'customer', stageHistory: [{ stage: 'prospect', at: event.recordedAt, eventId: 'e1', causationId: 'reg-c1' }],
      acquisition: { source: 'web' }, referees: [], feedback: { count: 0, complaints: 0 }, thanks: { count: 0, recent: [] },
      value: { revenueMinor: 2500, costMinor: 1500, marginMinor: 1000 }, rfm: { frequency: 1, monetaryMinor: 2500 }, personalDataRedacted: true,
    };
    const samples: [JsonSchema, unknown][] = [
      [EventEnvelopeSchema, event],
      [LifecycleTransitionSchema, transition],
      [ProfileSnapshotSchema, { customerId: 'c1', snapshotVersion: 1, position: 42, profile: snapshotProfile }],
      [ReferralEdgeSchema, edge],
      [
        CommandEnvelopeSchema,
        {
          type: 'RecordPurchase',
          commandId: 'cmd-1',
          data: { customerId: 'c1', orderId: 'o1', occurredAt: event.occurredAt, lines: [{ sku: 'BOOK-1', category: 'books', quantity: 1, unitPriceMinor: 1250, unitCostMinor: 700 }] },
        },
      ],
      [DeadLetterSchema, deadLetter],
    ];
    // then each one conforms
    for (const [schema, sample] of samples) expect(formatIssues(validateAgainstSchema(schema, sample))).toBe('');
    // and a snapshot carrying personal fields, or a field nobody was told of, does not
    const leaking = { customerId: 'c1', snapshotVersion: 1, position: 42, profile: { ...snapshotProfile, identity: { name: 'Ann' } } };
    expect(formatIssues(validateAgainstSchema(ProfileSnapshotSchema, leaking))).toContain('identity');
    const grown = { customerId: 'c1', snapshotVersion: 1, position: 42, profile: { ...snapshotProfile, colour: 'red' } };
    expect(formatIssues(validateAgainstSchema(ProfileSnapshotSchema, grown))).toContain('colour');
  });

  it('name the field and what was expected when an event envelope is wrong', () => {
    // given an envelope with a missing id, a fractional revision, a local time and an extra field
    const { id: _dropped, ...withoutId } = event;
    const bad = { ...withoutId, revision: 1.5, occurredAt: '31/01/2026', extra: true };
    // when validated
    const issues = validateAgainstSchema(EventEnvelopeSchema, bad);
    // then each problem points at its field
    expect(issues).toEqual(
      expect.arrayContaining([
        { path: '/id', message: 'required property is missing' },
        { path: '/revision', message: 'expected integer, got number' },
        { path: '/occurredAt', message: expect.stringContaining('ISO-8601') },
        { path: '/extra', message: 'property is not allowed here' },
      ]),
    );
    expect(issues).toHaveLength(4);
  });

  it('reject a lifecycle message whose type is not a transition', () => {
    const issues = validateAgainstSchema(LifecycleTransitionSchema, {
      ...event, customerId: 'c1', toStage: 'customer', data: { customerId: 'c1', occurredAt: event.occurredAt },
    });
    expect(issues).toEqual([{ path: '/type', message: expect.stringContaining('expected one of "ProspectRegistered"') }]);
  });

  it('reject a command without data or with a non-string commandId', () => {
    const issues = validateAgainstSchema(CommandEnvelopeSchema, { type: 'RecordPurchase', commandId: 7 });
    expect(issues).toEqual([
      { path: '/data', message: 'required property is missing' },
      { path: '/commandId', message: 'expected string, got integer' },
    ]);
  });

  it('leave the data of a command envelope to the application at the ingest, which names its faults in the words of the HTTP API', () => {
    // an unknown type and empty data are a command to refuse (invalid_command), not a record that is none (not_a_command)
    expect(validateAgainstSchema(CommandEnvelopeShapeSchema, { type: 'UnknownCommand', commandId: 'c', data: {} })).toEqual([]);
    expect(validateAgainstSchema(CommandEnvelopeSchema, { type: 'UnknownCommand', commandId: 'c', data: {} })).not.toEqual([]);
    expect(validateAgainstSchema(CommandEnvelopeShapeSchema, { type: 'RecordPurchase', data: {} })).toEqual([{ path: '/commandId', message: 'required property is missing' }]);
  });

  it('compile in strict mode, so a schema with a keyword the validator does not know fails loudly', () => {
    for (const schema of Object.values(PublicSchemas)) expect(() => validateAgainstSchema(schema, {})).not.toThrow();
    expect(() => validateAgainstSchema({ type: 'object', oneOfz: [] } as unknown as JsonSchema, {})).toThrow('oneOfz');
  });
});
