import 'reflect-metadata';
import {
  EXPECTED,
  Expect,
  Nested,
  NestedEach,
  Optional,
  isId,
  isIntegerBetween,
  isIsoDate,
  isIsoDateTime,
  isMinorUnits,
  isOneOf,
  RecordOf,
  isText,
} from './field-rules';

/**
 * One DTO per command callers may send. These mirror the command shapes of the domain (which this
 * library may not import): the application checks at compile time that they stay assignable.
 * Fields are `!`-asserted because class-transformer fills them and class-validator proves them.
 */

/** the longest text of most fields (names, channels, sources) and of free text (notes, comments, reasons) */
export const SHORT_TEXT_MAX = 200;
export const LONG_TEXT_MAX = 2000;
const SHORT = SHORT_TEXT_MAX;
const LONG = LONG_TEXT_MAX;

const Id = () => Expect(EXPECTED.id, isId);
const Text = (max = SHORT) => Expect(EXPECTED.text(max), isText(max));
const OccurredAt = () => Expect(EXPECTED.dateTime, isIsoDateTime);

abstract class BusinessTime {
  @OccurredAt() occurredAt!: string;
}

export const EMAIL_MAX_LENGTH = 254;
export const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+$/;
export const PHONE_MAX_LENGTH = 40;

export class PersonalDataDto {
  @Optional() @Text() name?: string;
  @Optional()
  @Expect(`an email address of at most ${EMAIL_MAX_LENGTH} characters`, (v) => typeof v === 'string' && v.length <= EMAIL_MAX_LENGTH && EMAIL_PATTERN.test(v))
  email?: string;
  @Optional() @Text(PHONE_MAX_LENGTH) phone?: string;
  @Optional() @Expect(EXPECTED.date, isIsoDate) birthday?: string;
}

export class PurchaseLineDto {
  @Id() sku!: string;
  @Text() category!: string;
  @Expect('a positive integer', (v) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0) quantity!: number;
  @Expect(EXPECTED.minorUnits, isMinorUnits) unitPriceMinor!: number;
  @Expect(EXPECTED.minorUnits, isMinorUnits) unitCostMinor!: number;
}

export class RegisterProspectDto extends BusinessTime {
  @Id() customerId!: string;
  @Text() source!: string;
  @Optional() @Text() channel?: string;
  @Optional() @Text() campaign?: string;
  @Optional() @Id() referredBy?: string;
  @Optional() @Nested(() => PersonalDataDto) personal?: PersonalDataDto;
}

export const TOUCHPOINT_DIRECTIONS = ['inbound', 'outbound'] as const;
export class RecordTouchpointDto extends BusinessTime {
  @Id() customerId!: string;
  @Text() channel!: string;
  @Expect(EXPECTED.oneOf(TOUCHPOINT_DIRECTIONS), isOneOf(TOUCHPOINT_DIRECTIONS))
  direction!: (typeof TOUCHPOINT_DIRECTIONS)[number];
  @Text() kind!: string;
  @Optional() @Text(LONG) note?: string;
}

export const MAX_PURCHASE_LINES = 1000;
export class RecordPurchaseDto extends BusinessTime {
  @Id() customerId!: string;
  @Id() orderId!: string;
  @Expect(
    `a non-empty array of purchase lines (at most ${MAX_PURCHASE_LINES})`,
    (v) => Array.isArray(v) && v.length > 0 && v.length <= MAX_PURCHASE_LINES,
  )
  @NestedEach(() => PurchaseLineDto)
  lines!: PurchaseLineDto[];
  @Optional() @Text() channel?: string;
  @Optional() @Text() location?: string;
  @Optional() @Text() campaign?: string;
}

export const FEEDBACK_KINDS = ['praise', 'complaint', 'suggestion'] as const;
export const FEEDBACK_SCORE_MIN = 0;
export const FEEDBACK_SCORE_MAX = 10;
export class RecordFeedbackDto extends BusinessTime {
  @Id() customerId!: string;
  @Id() feedbackId!: string;
  @Expect(`an integer from ${FEEDBACK_SCORE_MIN} to ${FEEDBACK_SCORE_MAX}`, isIntegerBetween(FEEDBACK_SCORE_MIN, FEEDBACK_SCORE_MAX)) score!: number;
  @Expect(EXPECTED.oneOf(FEEDBACK_KINDS), isOneOf(FEEDBACK_KINDS)) kind!: (typeof FEEDBACK_KINDS)[number];
  @Optional() @Text() topic?: string;
  @Optional() @Id() employeeId?: string;
  @Optional() @Text(LONG) comment?: string;
}

export class ThankCustomerDto extends BusinessTime {
  @Id() customerId!: string;
  @Text() gesture!: string;
  @Text() reason!: string;
  @Optional() @Expect(EXPECTED.minorUnits, isMinorUnits) valueMinor?: number;
}

export class UpdateProfileDto extends BusinessTime {
  @Id() customerId!: string;
  @Optional() @Nested(() => PersonalDataDto) personal?: PersonalDataDto;
  @Optional() @RecordOf(`strings (at most ${LONG} characters each)`, EXPECTED.text(LONG), isText(LONG)) preferences?: Record<string, string>;
  @Optional() @RecordOf('true or false', 'true or false', (v) => typeof v === 'boolean') consents?: Record<string, boolean>;
}

export class MarkCustomerLostDto extends BusinessTime {
  @Id() customerId!: string;
  @Text(LONG) reason!: string;
}

export class ChurnIfInactiveDto extends BusinessTime {
  @Id() customerId!: string;
}

export class EraseCustomerPersonalDataDto extends BusinessTime {
  @Id() customerId!: string;
  @Optional() @Text() requestedBy?: string;
}

export class HireEmployeeDto extends BusinessTime {
  @Id() employeeId!: string;
  @Text() name!: string;
  @Optional() @Text() role?: string;
}

export class RecordEmployeeLeftDto extends BusinessTime {
  @Id() employeeId!: string;
  @Optional() @Text(LONG) reason?: string;
}

export class RecordCampaignSpendDto extends BusinessTime {
  @Id() campaignId!: string;
  @Id() spendId!: string;
  @Text() channel!: string;
  @Expect(EXPECTED.minorUnits, isMinorUnits) amountMinor!: number;
}

/** The commands callers may send, by envelope `type`. Referral commands are issued internally only. */
export const COMMAND_DTOS = {
  RegisterProspect: RegisterProspectDto,
  RecordTouchpoint: RecordTouchpointDto,
  RecordPurchase: RecordPurchaseDto,
  RecordFeedback: RecordFeedbackDto,
  ThankCustomer: ThankCustomerDto,
  UpdateProfile: UpdateProfileDto,
  MarkCustomerLost: MarkCustomerLostDto,
  ChurnIfInactive: ChurnIfInactiveDto,
  EraseCustomerPersonalData: EraseCustomerPersonalDataDto,
  HireEmployee: HireEmployeeDto,
  RecordEmployeeLeft: RecordEmployeeLeftDto,
  RecordCampaignSpend: RecordCampaignSpendDto,
} as const;

export type ExternalCommandType = keyof typeof COMMAND_DTOS;
export const EXTERNAL_COMMAND_TYPES = Object.keys(COMMAND_DTOS) as ExternalCommandType[];
