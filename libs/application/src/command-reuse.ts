import { LifecycleTransitionTypes, type DomainCommand } from '@clientele/domain';
import { canonicalJson, type StoredEvent } from '@clientele/event-store';
import { CommandIdReusedError } from './application.errors';

/**
 * Whether a command answered `duplicate` is the command its id stored, or another one sent under the
 * same id (a caller whose id counter restarted, two systems sharing a key space). The first must be
 * answered as before; the second would otherwise be answered "already stored" and silently never
 * recorded. Nothing extra is stored per command: the re-sent command is compared with the fact its id
 * stored, which carries the command's own fields (see the deciders). The comparison runs only when a
 * command id is seen again, never on the command path's usual turn.
 *
 * Left out of it, by design:
 * - sealed personal fields (`personal`, `note`, `comment`): they may be erased since, and a retry
 *   after an erasure must still answer `duplicate`;
 * - commands the referral process issues itself: their ids are derived from the event that caused
 *   them, so the same id always carries the same content.
 */
interface FactOf {
  /** the event type that records the command */
  fact: string;
  /** the command's fields compared, each with the fact's name for it where that differs */
  fields: readonly (string | readonly [command: string, fact: string])[];
  /** tells this command's fact from the same event type made by another command (or implicitly) */
  marks?: (data: Readonly<Record<string, unknown>>) => boolean;
}

const FACTS: Readonly<Record<string, FactOf>> = {
  RegisterProspect: {
    fact: 'ProspectRegistered',
    fields: ['customerId', 'source', 'channel', 'campaign', 'referredBy', 'occurredAt'],
    // a first purchase or touchpoint registers its customer implicitly, under its own command id
    marks: (data) => data.implicit !== true,
  },
  RecordTouchpoint: { fact: 'TouchpointRecorded', fields: ['customerId', 'channel', 'direction', 'kind', 'occurredAt'] },
  RecordPurchase: {
    fact: 'PurchaseRecorded',
    fields: ['customerId', 'orderId', 'lines', 'channel', 'location', 'campaign', 'occurredAt'],
  },
  RecordFeedback: {
    fact: 'FeedbackReceived',
    fields: ['customerId', 'feedbackId', 'score', 'kind', 'topic', 'employeeId', 'occurredAt'],
  },
  ThankCustomer: { fact: 'CustomerThanked', fields: ['customerId', 'gesture', 'reason', 'valueMinor', 'occurredAt'] },
  UpdateProfile: { fact: 'ProfileUpdated', fields: ['customerId', 'preferences', 'consents', 'occurredAt'] },
  MarkCustomerLost: {
    fact: 'CustomerChurned',
    fields: ['customerId', ['reason', 'detail'], 'occurredAt'],
    marks: (data) => data.reason === 'marked_lost',
  },
  ChurnIfInactive: { fact: 'CustomerChurned', fields: ['customerId', 'occurredAt'], marks: (data) => data.reason === 'inactive' },
  EraseCustomerPersonalData: { fact: 'PersonalDataErased', fields: ['customerId', 'requestedBy', 'occurredAt'] },
  HireEmployee: { fact: 'EmployeeHired', fields: ['employeeId', 'name', 'role', 'occurredAt'] },
  RecordEmployeeLeft: { fact: 'EmployeeLeft', fields: ['employeeId', 'reason', 'occurredAt'] },
  RecordCampaignSpend: { fact: 'CampaignSpendRecorded', fields: ['campaignId', 'spendId', 'channel', 'amountMinor', 'occurredAt'] },
};

/** How a re-sent command differs from what its id stored: the field (as the envelope names it), or `type`. */
export interface CommandReuse {
  field: string;
  /** the stored event it was compared with */
  event: Pick<StoredEvent, 'id' | 'type' | 'position'>;
}

/**
 * undefined when `command` is the one `earlier` (the events its id stored on this stream) records;
 * otherwise the first field that differs. A fact the command type does not make means the id stored
 * a command of another type.
 */
export function commandReuse(command: DomainCommand, earlier: readonly StoredEvent[]): CommandReuse | undefined {
  const of = FACTS[command.type];
  if (of === undefined || earlier.length === 0) return undefined;
  const data = command.data as unknown as Record<string, unknown>;
  const facts = earlier.filter((e) => e.type === of.fact);
  const fact = of.marks === undefined ? facts[0] : facts.find((e) => of.marks!(e.data));
  if (fact === undefined) {
    // named by what the id stands for: its fact, not the implicit registration or a transition beside it
    const event = earlier.find((e) => !LifecycleTransitionTypes.has(e.type)) ?? earlier.find((e) => e.data['implicit'] !== true) ?? earlier[0]!;
    return { field: 'type', event: { id: event.id, type: event.type, position: event.position } };
  }
  for (const field of of.fields) {
    const [name, stored] = typeof field === 'string' ? [field, field] : field;
    if (!sameValue(name, data[name], fact.data[stored])) {
      return { field: `data.${name}`, event: { id: fact.id, type: fact.type, position: fact.position } };
    }
  }
  return undefined;
}

function sameValue(name: string, sent: unknown, stored: unknown): boolean {
  if (sent === undefined || stored === undefined) return sent === stored;
  // an instant written another way (an offset, fewer digits) by an earlier version is the same time
  if (name === 'occurredAt' && typeof sent === 'string' && typeof stored === 'string') return Date.parse(sent) === Date.parse(stored);
  return canonicalJson(sent) === canonicalJson(stored);
}

/** The error answering `command` re-sent under the id of another command, or undefined when it is the same command. */
export function commandIdReused(command: DomainCommand, commandId: string, earlier: readonly StoredEvent[]): CommandIdReusedError | undefined {
  const reuse = commandReuse(command, earlier);
  if (reuse === undefined) return undefined;
  const at = `${reuse.event.type} at position ${reuse.event.position}`;
  return new CommandIdReusedError(
    commandId,
    reuse.field === 'type' ? `it stored ${at}, which a ${command.type} does not record` : `${reuse.field} differs from what it stored (${at})`,
    reuse.field,
  );
}
