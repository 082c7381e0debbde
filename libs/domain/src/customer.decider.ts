import type {
  ChurnIfInactive,
  ConvertReferral,
  CreditReferral,
  CustomerCommand,
  EraseCustomerPersonalData,
  MarkCustomerLost,
  RecordFeedback,
  RecordPurchase,
  RecordTouchpoint,
  RegisterProspect,
  ThankCustomer,
  UpdateProfile,
} from './commands';
import { DomainError, DomainErrorCodes } from './errors';
import type { CustomerEvent, CustomerStage, IsoDateTime, ProspectRegistered } from './events';
import { assertMinorUnits, businessTime, daysBetween, unknownCommand, withoutUndefined } from './guards';
import { defaultPolicy, type LifecyclePolicy } from './policy';

/**
 * The customer lifecycle as a pure decider over the stream `customer-{id}`.
 * See docs/domain.md for the rules in prose.
 */

export interface StageChange {
  stage: CustomerStage;
  at: IsoDateTime;
}

/** What every registered person has, whatever their stage. */
interface Registration {
  customerId: string;
  registeredAt: IsoDateTime;
  source: string;
  referredBy?: string;
  erased: boolean;
  feedbackIds: ReadonlySet<string>;
  /** people this customer referred who registered */
  creditedReferees: ReadonlySet<string>;
  /** people this customer referred who bought */
  convertedReferees: ReadonlySet<string>;
  history: readonly StageChange[];
}

/** Only someone who bought has orders. */
interface Purchases {
  orderIds: ReadonlySet<string>;
  firstPurchaseAt: IsoDateTime;
  lastPurchaseAt: IsoDateTime;
}

export type ActiveStage = 'customer' | 'repeat_buyer' | 'advocate';

export type UnknownCustomerState = { phase: 'unknown' };
export type ProspectState = Registration & {
  phase: 'prospect';
  /**
   * The business times of a purchase folded before the conversion that carries it: the conversion
   * may be dated later than the purchase (at the registration, for an order dated before it), and
   * the purchase dates the customer's first and last purchase, not the conversion.
   */
  purchasedBeforeConversion?: { first: IsoDateTime; last: IsoDateTime };
};
export type BuyerState = Registration & Purchases & { phase: ActiveStage };
export type ChurnedState = Registration &
  Purchases & { phase: 'churned'; previousStage: ActiveStage; churnedAt: IsoDateTime };
export type CustomerState = UnknownCustomerState | ProspectState | BuyerState | ChurnedState;
export type KnownCustomerState = Exclude<CustomerState, UnknownCustomerState>;

export const initialCustomerState = (): CustomerState => ({ phase: 'unknown' });

function added(set: ReadonlySet<string>, value: string): ReadonlySet<string> {
  return set.has(value) ? set : new Set([...set, value]);
}

// Evolve never throws, so a stored time that does not parse simply does not win.
function laterOf(a: IsoDateTime, b: IsoDateTime): IsoDateTime {
  return Date.parse(b) > Date.parse(a) ? b : a;
}

function earlierOf(a: IsoDateTime, b: IsoDateTime): IsoDateTime {
  return Date.parse(b) < Date.parse(a) ? b : a;
}

/** when the customer entered the stage they are in */
function stageSince(state: KnownCustomerState): IsoDateTime {
  return state.history[state.history.length - 1]?.at ?? state.registeredAt;
}

/**
 * The business time of a stage change a fact causes: the fact's own, or the date the customer
 * entered their present stage when the fact is backdated before it. A history is then always in
 * business-time order (a late order cannot make someone a repeat buyer before they became a
 * customer); the fact itself keeps its own date.
 */
function transitionTime(state: KnownCustomerState, occurredAt: IsoDateTime): IsoDateTime {
  return laterOf(occurredAt, stageSince(state));
}

function enter<S extends KnownCustomerState>(state: S, stage: CustomerStage, at: IsoDateTime): S {
  return { ...state, history: [...state.history, { stage, at }] };
}

/**
 * Total: an event that does not apply to the current phase (or a type this version does not know)
 * leaves the state as it is, so replaying any stored history never throws.
 */
export function evolveCustomer(state: CustomerState, event: CustomerEvent): CustomerState {
  const at = event.data.occurredAt;
  if (state.phase === 'unknown') {
    if (event.type !== 'ProspectRegistered') return state;
    return withoutUndefined({
      phase: 'prospect' as const,
      customerId: event.data.customerId,
      registeredAt: at,
      source: event.data.source,
      referredBy: event.data.referredBy,
      erased: false,
      feedbackIds: new Set<string>(),
      creditedReferees: new Set<string>(),
      convertedReferees: new Set<string>(),
      history: [{ stage: 'prospect' as const, at }],
    });
  }
  switch (event.type) {
    case 'PurchaseRecorded': {
      // A prospect's first order is carried by the CustomerConverted written right after it; its
      // time is kept for that conversion, which may be dated later.
      if (state.phase === 'prospect') {
        const before = state.purchasedBeforeConversion;
        return { ...state, purchasedBeforeConversion: before ? { first: earlierOf(before.first, at), last: laterOf(before.last, at) } : { first: at, last: at } };
      }
      return {
        ...state,
        orderIds: added(state.orderIds, event.data.orderId),
        // a late order dated before the first one is the first purchase now
        firstPurchaseAt: earlierOf(state.firstPurchaseAt, at),
        lastPurchaseAt: laterOf(state.lastPurchaseAt, at),
      };
    }
    case 'CustomerConverted': {
      if (state.phase !== 'prospect') return state;
      const { purchasedBeforeConversion: purchased, ...prospect } = state;
      return enter(
        {
          ...prospect,
          phase: 'customer',
          orderIds: new Set([event.data.orderId]),
          firstPurchaseAt: purchased?.first ?? at,
          lastPurchaseAt: purchased?.last ?? at,
        },
        'customer',
        at,
      );
    }
    case 'RepeatBuyerQualified':
      return state.phase === 'customer' ? enter({ ...state, phase: 'repeat_buyer' }, 'repeat_buyer', at) : state;
    case 'AdvocateRecognized':
      return state.phase === 'customer' || state.phase === 'repeat_buyer'
        ? enter({ ...state, phase: 'advocate' }, 'advocate', at)
        : state;
    case 'CustomerChurned':
      if (state.phase === 'prospect' || state.phase === 'churned') return state;
      return enter({ ...state, phase: 'churned', previousStage: state.phase, churnedAt: at }, 'churned', at);
    case 'CustomerReactivated': {
      if (state.phase !== 'churned') return state;
      const { previousStage: _previous, churnedAt: _churnedAt, ...rest } = state;
      return enter({ ...rest, phase: 'customer', orderIds: added(state.orderIds, event.data.orderId) }, 'customer', at);
    }
    case 'ReferralCredited':
      return { ...state, creditedReferees: added(state.creditedReferees, event.data.refereeId) };
    case 'ReferralConverted':
      return {
        ...state,
        creditedReferees: added(state.creditedReferees, event.data.refereeId),
        convertedReferees: added(state.convertedReferees, event.data.refereeId),
      };
    case 'FeedbackReceived':
      return { ...state, feedbackIds: added(state.feedbackIds, event.data.feedbackId) };
    case 'PersonalDataErased':
      return { ...state, erased: true };
    default:
      return state;
  }
}

export function foldCustomer(events: Iterable<CustomerEvent>, state: CustomerState = initialCustomerState()): CustomerState {
  let current = state;
  for (const event of events) current = evolveCustomer(current, event);
  return current;
}

/** The stage a state is in, `undefined` for an id never seen. */
export function customerStage(state: CustomerState): CustomerStage | undefined {
  return state.phase === 'unknown' ? undefined : state.phase;
}

/** The events one command decided and the state after them. */
export interface CustomerDecision {
  readonly events: CustomerEvent[];
  readonly state: CustomerState;
}

/**
 * Collects the events of one decision and folds each into the state as it goes, so a rule checked
 * after a fact sees that fact (a purchase's order counts toward the repeat-buyer threshold).
 */
class Decision implements CustomerDecision {
  readonly events: CustomerEvent[] = [];
  constructor(public state: CustomerState) {}

  emit(event: CustomerEvent): void {
    this.events.push(event);
    this.state = evolveCustomer(this.state, event);
  }

  /** Facts about an id never seen register that person first, with an unknown source. */
  ensureRegistered(customerId: string, occurredAt: IsoDateTime): KnownCustomerState {
    if (this.state.phase === 'unknown') this.emit(implicitRegistration(customerId, occurredAt));
    return this.state as KnownCustomerState;
  }
}

function implicitRegistration(customerId: string, occurredAt: IsoDateTime): ProspectRegistered {
  return {
    type: 'ProspectRegistered',
    data: { customerId, source: 'unknown', personal: {}, implicit: true, occurredAt },
  };
}

function requireKnown(state: CustomerState, customerId: string): KnownCustomerState {
  if (state.phase === 'unknown') {
    throw new DomainError(DomainErrorCodes.UnknownCustomer, `customer ${customerId} is not registered`, 'customerId');
  }
  return state;
}

function rejectPersonalAfterErasure(state: CustomerState, field: string, value: unknown): void {
  if (state.phase !== 'unknown' && state.erased && value !== undefined) {
    throw new DomainError(
      DomainErrorCodes.CustomerErased,
      `customer ${state.customerId} had their personal data erased; ${field} cannot be recorded for them`,
      field,
    );
  }
}

/** Nothing to record: the state stays as it is. */
function nothing(state: CustomerState): CustomerDecision {
  return { events: [], state };
}

/** Events decided without a Decision, folded here. */
function decided(state: CustomerState, events: CustomerEvent[]): CustomerDecision {
  return { events, state: foldCustomer(events, state) };
}

/**
 * Throws DomainError when a rule forbids the command; returns [] when the command repeats a fact
 * already recorded (idempotent no-op). Events carry the command's business time.
 */
export function decideCustomer(
  command: CustomerCommand,
  state: CustomerState,
  policy: LifecyclePolicy = defaultPolicy,
): CustomerEvent[] {
  return decideAndEvolveCustomer(command, state, policy).events;
}

/**
 * `decideCustomer` with the state after the decided events, `foldCustomer(events, state)`. Deciding
 * folds them anyway (a rule after a fact sees that fact), so a caller that keeps the state, as the
 * command path does, need not fold the same events a second time.
 */
export function decideAndEvolveCustomer(
  command: CustomerCommand,
  state: CustomerState,
  policy: LifecyclePolicy = defaultPolicy,
): CustomerDecision {
  businessTime(command.data.occurredAt);
  switch (command.type) {
    case 'RegisterProspect':
      return registerProspect(command, state);
    case 'RecordTouchpoint':
      return recordTouchpoint(command, state);
    case 'RecordPurchase':
      return recordPurchase(command, state, policy);
    case 'RecordFeedback':
      return recordFeedback(command, state, policy);
    case 'ThankCustomer':
      return thankCustomer(command, state);
    case 'UpdateProfile':
      return updateProfile(command, state);
    case 'MarkCustomerLost':
      return markCustomerLost(command, state);
    case 'ChurnIfInactive':
      return churnIfInactive(command, state, policy);
    case 'EraseCustomerPersonalData':
      return erasePersonalData(command, state);
    case 'CreditReferral':
      return creditReferral(command, state);
    case 'ConvertReferral':
      return convertReferral(command, state, policy);
    default:
      return unknownCommand(command);
  }
}


function registerProspect({ data }: RegisterProspect, state: CustomerState): CustomerDecision {
  if (data.referredBy !== undefined && data.referredBy === data.customerId) {
    throw new DomainError(DomainErrorCodes.SelfReferral, `customer ${data.customerId} cannot refer themselves`, 'referredBy');
  }
  if (state.phase !== 'unknown') {
    if (state.source === data.source && state.referredBy === data.referredBy) return nothing(state);
    if (state.referredBy !== undefined && data.referredBy !== undefined) {
      throw new DomainError(
        DomainErrorCodes.AlreadyReferred,
        `customer ${data.customerId} was already referred by ${state.referredBy}; a person is referred at most once`,
        'referredBy',
      );
    }
    throw new DomainError(
      DomainErrorCodes.AlreadyRegistered,
      `customer ${data.customerId} is already registered (source ${state.source}); use UpdateProfile to change their details`,
      'customerId',
    );
  }
  return decided(state, [
    {
      type: 'ProspectRegistered',
      data: withoutUndefined({
        customerId: data.customerId,
        source: data.source,
        channel: data.channel,
        campaign: data.campaign,
        referredBy: data.referredBy,
        personal: data.personal ?? {},
        implicit: false,
        occurredAt: data.occurredAt,
      }),
    },
  ]);
}

function recordTouchpoint({ data }: RecordTouchpoint, state: CustomerState): CustomerDecision {
  rejectPersonalAfterErasure(state, 'note', data.note);
  const decision = new Decision(state);
  decision.ensureRegistered(data.customerId, data.occurredAt);
  decision.emit({ type: 'TouchpointRecorded', data: withoutUndefined(data) });
  return decision;
}

function purchaseTotals(command: RecordPurchase): { totalMinor: number; costMinor: number } {
  const { lines } = command.data;
  if (!Array.isArray(lines) || lines.length === 0) {
    throw new DomainError(DomainErrorCodes.InvalidAmount, 'lines must hold at least one purchase line', 'lines');
  }
  let totalMinor = 0;
  let costMinor = 0;
  lines.forEach((line, i) => {
    if (!Number.isSafeInteger(line.quantity) || line.quantity <= 0) {
      throw new DomainError(
        DomainErrorCodes.InvalidAmount,
        `lines[${i}].quantity must be a positive integer, got ${JSON.stringify(line.quantity)}`,
        `lines[${i}].quantity`,
      );
    }
    assertMinorUnits(line.unitPriceMinor, `lines[${i}].unitPriceMinor`);
    assertMinorUnits(line.unitCostMinor, `lines[${i}].unitCostMinor`);
    totalMinor += line.quantity * line.unitPriceMinor;
    costMinor += line.quantity * line.unitCostMinor;
  });
  // each line's amounts are exact; their sum can still leave the integers a number holds exactly
  for (const [what, sum] of [['price', totalMinor], ['cost', costMinor]] as const) {
    if (!Number.isSafeInteger(sum)) {
      throw new DomainError(
        DomainErrorCodes.InvalidAmount,
        `lines: their total ${what} (quantity × unit ${what}, summed) is ${sum}, above the largest exact amount in minor units, ${Number.MAX_SAFE_INTEGER}`,
        'lines',
      );
    }
  }
  return { totalMinor, costMinor };
}

function recordPurchase(command: RecordPurchase, state: CustomerState, policy: LifecyclePolicy): CustomerDecision {
  const { data } = command;
  const totals = purchaseTotals(command);
  if (state.phase !== 'unknown' && state.phase !== 'prospect' && state.orderIds.has(data.orderId)) return nothing(state);
  const decision = new Decision(state);
  const before = decision.ensureRegistered(data.customerId, data.occurredAt);
  decision.emit({
    type: 'PurchaseRecorded',
    data: withoutUndefined({
      customerId: data.customerId,
      orderId: data.orderId,
      lines: data.lines.map((line) => ({ ...line })),
      ...totals,
      channel: data.channel,
      location: data.location,
      campaign: data.campaign,
      occurredAt: data.occurredAt,
    }),
  });
  const transition = { customerId: data.customerId, occurredAt: transitionTime(before, data.occurredAt) };
  switch (before.phase) {
    case 'prospect':
      decision.emit({ type: 'CustomerConverted', data: { ...transition, orderId: data.orderId } });
      climbAfterPurchase(decision, policy, transition);
      break;
    case 'churned':
      // An order dated before the churn is a late record of the past, not a win-back.
      if (businessTime(data.occurredAt) >= businessTime(before.churnedAt)) {
        decision.emit({
          type: 'CustomerReactivated',
          data: { ...transition, orderId: data.orderId, churnedAt: before.churnedAt },
        });
      }
      break;
    default:
      climbAfterPurchase(decision, policy, transition);
  }
  return decision;
}

type TransitionBase = { customerId: string; occurredAt: IsoDateTime };

function climbAfterPurchase(decision: Decision, policy: LifecyclePolicy, base: TransitionBase): void {
  const state = decision.state;
  if (state.phase === 'customer' && state.orderIds.size >= policy.repeatPurchaseThreshold) {
    decision.emit({ type: 'RepeatBuyerQualified', data: { ...base, distinctOrders: state.orderIds.size } });
  }
  recognizeByReferrals(decision, policy, base);
}

function recognizeByReferrals(decision: Decision, policy: LifecyclePolicy, base: TransitionBase): void {
  const state = decision.state;
  if (
    (state.phase === 'customer' || state.phase === 'repeat_buyer') &&
    state.convertedReferees.size >= policy.advocateMinConvertedReferrals
  ) {
    decision.emit({
      type: 'AdvocateRecognized',
      data: { ...base, reason: 'converted_referrals', convertedReferrals: state.convertedReferees.size },
    });
  }
}

function recordFeedback({ data }: RecordFeedback, state: CustomerState, policy: LifecyclePolicy): CustomerDecision {
  if (!Number.isInteger(data.score) || data.score < 0 || data.score > 10) {
    throw new DomainError(
      DomainErrorCodes.InvalidScore,
      `score must be an integer from 0 to 10, got ${JSON.stringify(data.score)}`,
      'score',
    );
  }
  if (state.phase !== 'unknown' && state.feedbackIds.has(data.feedbackId)) return nothing(state);
  rejectPersonalAfterErasure(state, 'comment', data.comment);
  const decision = new Decision(state);
  decision.ensureRegistered(data.customerId, data.occurredAt);
  decision.emit({ type: 'FeedbackReceived', data: withoutUndefined(data) });
  const after = decision.state;
  if (after.phase === 'repeat_buyer' && data.score >= policy.promoterMinScore) {
    decision.emit({
      type: 'AdvocateRecognized',
      data: {
        customerId: data.customerId,
        reason: 'promoter_feedback',
        convertedReferrals: after.convertedReferees.size,
        score: data.score,
        occurredAt: transitionTime(after, data.occurredAt),
      },
    });
  }
  return decision;
}

function thankCustomer({ data }: ThankCustomer, state: CustomerState): CustomerDecision {
  if (data.valueMinor !== undefined) assertMinorUnits(data.valueMinor, 'valueMinor');
  const decision = new Decision(state);
  decision.ensureRegistered(data.customerId, data.occurredAt);
  decision.emit({ type: 'CustomerThanked', data: withoutUndefined(data) });
  return decision;
}

function updateProfile({ data }: UpdateProfile, state: CustomerState): CustomerDecision {
  // nothing to change is nothing to record (it neither registers an unknown customer)
  if (data.personal === undefined && data.preferences === undefined && data.consents === undefined) return nothing(state);
  rejectPersonalAfterErasure(state, 'personal', data.personal);
  const decision = new Decision(state);
  decision.ensureRegistered(data.customerId, data.occurredAt);
  decision.emit({ type: 'ProfileUpdated', data: withoutUndefined(data) });
  return decision;
}

function markCustomerLost({ data }: MarkCustomerLost, state: CustomerState): CustomerDecision {
  const known = requireKnown(state, data.customerId);
  if (known.phase === 'churned') return nothing(state);
  if (known.phase === 'prospect') {
    throw new DomainError(
      DomainErrorCodes.NotACustomer,
      `customer ${data.customerId} is a prospect who never bought; only customers can be lost`,
      'customerId',
    );
  }
  const since = stageSince(known);
  if (businessTime(data.occurredAt) < businessTime(since)) {
    throw new DomainError(
      DomainErrorCodes.DateOutOfOrder,
      `occurredAt ${data.occurredAt} is before customer ${data.customerId} became ${known.phase.replace('_', ' ')} (${since}); a churn cannot be dated before the stage it ends`,
      'occurredAt',
    );
  }
  return decided(state, [
    {
      type: 'CustomerChurned',
      data: withoutUndefined({
        customerId: data.customerId,
        reason: 'marked_lost' as const,
        detail: data.reason,
        previousStage: known.phase,
        lastPurchaseAt: known.lastPurchaseAt,
        occurredAt: data.occurredAt,
      }),
    },
  ]);
}

function churnIfInactive({ data }: ChurnIfInactive, state: CustomerState, policy: LifecyclePolicy): CustomerDecision {
  const known = requireKnown(state, data.customerId);
  if (known.phase === 'prospect' || known.phase === 'churned') return nothing(state);
  if (daysBetween(known.lastPurchaseAt, data.occurredAt) < policy.churnAfterDays) return nothing(state);
  // a sweep dated before the customer's present stage began finds them in a stage they had not reached yet
  if (businessTime(data.occurredAt) < businessTime(stageSince(known))) return nothing(state);
  return decided(state, [
    {
      type: 'CustomerChurned',
      data: {
        customerId: data.customerId,
        reason: 'inactive',
        previousStage: known.phase,
        lastPurchaseAt: known.lastPurchaseAt,
        occurredAt: data.occurredAt,
      },
    },
  ]);
}

function erasePersonalData({ data }: EraseCustomerPersonalData, state: CustomerState): CustomerDecision {
  const known = requireKnown(state, data.customerId);
  if (known.erased) return nothing(state);
  return decided(state, [{ type: 'PersonalDataErased', data: withoutUndefined(data) }]);
}

function assertNotSelf(customerId: string, refereeId: string): void {
  if (customerId === refereeId) {
    throw new DomainError(DomainErrorCodes.SelfReferral, `customer ${customerId} cannot refer themselves`, 'refereeId');
  }
}

function creditReferral({ data }: CreditReferral, state: CustomerState): CustomerDecision {
  assertNotSelf(data.customerId, data.refereeId);
  if (state.phase !== 'unknown' && state.creditedReferees.has(data.refereeId)) return nothing(state);
  const decision = new Decision(state);
  decision.ensureRegistered(data.customerId, data.occurredAt);
  decision.emit({ type: 'ReferralCredited', data: { ...data } });
  return decision;
}

function convertReferral({ data }: ConvertReferral, state: CustomerState, policy: LifecyclePolicy): CustomerDecision {
  assertNotSelf(data.customerId, data.refereeId);
  if (state.phase !== 'unknown' && state.convertedReferees.has(data.refereeId)) return nothing(state);
  const decision = new Decision(state);
  const before = decision.ensureRegistered(data.customerId, data.occurredAt);
  // The credit may be missing if the referee's registration reaction never ran; keep the graph whole.
  if (!before.creditedReferees.has(data.refereeId)) {
    decision.emit({
      type: 'ReferralCredited',
      data: { customerId: data.customerId, refereeId: data.refereeId, occurredAt: data.occurredAt },
    });
  }
  decision.emit({ type: 'ReferralConverted', data: { ...data } });
  recognizeByReferrals(decision, policy, { customerId: data.customerId, occurredAt: transitionTime(decision.state as KnownCustomerState, data.occurredAt) });
  return decision;
}

export const customerDecider = {
  initialState: initialCustomerState,
  evolve: evolveCustomer,
  decide: decideCustomer,
} as const;
