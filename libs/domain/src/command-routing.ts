import type { CampaignCommand, CustomerCommand, DomainCommand, EmployeeCommand } from './commands';
import { decideCampaign, foldCampaign } from './campaign.decider';
import { decideCustomer, foldCustomer } from './customer.decider';
import { decideEmployee, foldEmployee } from './employee.decider';
import type { CampaignEvent, CustomerEvent, DomainEvent, EmployeeEvent } from './events';
import { campaignStream, customerStream, employeeStream } from './events';
import { defaultPolicy, type LifecyclePolicy } from './policy';

export type DeciderName = 'customer' | 'employee' | 'campaign';

export interface CommandTarget {
  streamId: string;
  decider: DeciderName;
}

const employeeCommands: ReadonlySet<string> = new Set<EmployeeCommand['type']>(['HireEmployee', 'RecordEmployeeLeft']);
const campaignCommands: ReadonlySet<string> = new Set<CampaignCommand['type']>(['RecordCampaignSpend']);

function isEmployeeCommand(command: DomainCommand): command is EmployeeCommand {
  return employeeCommands.has(command.type);
}
function isCampaignCommand(command: DomainCommand): command is CampaignCommand {
  return campaignCommands.has(command.type);
}

/** The stream a command is decided on, and by which decider. */
export function commandTarget(command: DomainCommand): CommandTarget {
  if (isEmployeeCommand(command)) return { streamId: employeeStream(command.data.employeeId), decider: 'employee' };
  if (isCampaignCommand(command)) return { streamId: campaignStream(command.data.campaignId), decider: 'campaign' };
  return { streamId: customerStream((command as CustomerCommand).data.customerId), decider: 'customer' };
}

/** A stored event as the app layer reads it back: its type and payload, before any typing. */
export interface RecordedEvent {
  type: string;
  data: unknown;
}

/**
 * Folds the target stream's events with the right evolve and decides. The events are trusted to be
 * of the target stream's catalogue (the store's upcasters give them their current shape); types the
 * evolve does not know leave the state unchanged.
 */
export function decideFor(
  command: DomainCommand,
  events: Iterable<RecordedEvent>,
  policy: LifecyclePolicy = defaultPolicy,
): DomainEvent[] {
  if (isEmployeeCommand(command)) {
    return decideEmployee(command, foldEmployee(events as Iterable<EmployeeEvent>));
  }
  if (isCampaignCommand(command)) {
    return decideCampaign(command, foldCampaign(events as Iterable<CampaignEvent>));
  }
  const customerCommand = command as CustomerCommand;
  return decideCustomer(customerCommand, foldCustomer(events as Iterable<CustomerEvent>), policy);
}
