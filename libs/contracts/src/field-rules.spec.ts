import { seededRandom } from '@clientele/testing';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validateSync } from 'class-validator';
import { COMMAND_DTOS, PersonalDataDto, PurchaseLineDto } from './command.dtos';
import { copyIfPassesFieldRules, fieldRulesOf, isIsoDateTime, passesFieldRules } from './field-rules';

type Dto = abstract new () => object;

/** What class-validator will check on a class, per field: rule counts by kind. */
function classValidatorRules(cls: Dto): Map<string, { custom: number; conditional: number; nested: number }> {
  const found = new Map<string, { custom: number; conditional: number; nested: number }>();
  for (const m of getMetadataStorage().getTargetValidationMetadatas(cls as new () => object, '', true, false)) {
    const entry = found.get(m.propertyName) ?? { custom: 0, conditional: 0, nested: 0 };
    if (m.type === 'customValidation') entry.custom += 1;
    else if (m.type === 'conditionalValidation') entry.conditional += 1;
    else if (m.type === 'nestedValidation') entry.nested += 1;
    // Any other kind (a built-in decorator such as @IsEmail) is a rule the table does not know.
    else entry.custom += 1000;
    found.set(m.propertyName, entry);
  }
  return found;
}

const fullyValid = (cls: Dto, data: Record<string, unknown>): boolean =>
  validateSync(plainToInstance(cls as new () => object, data), {
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
  }).length === 0;


const line = { sku: 'SKU-1', category: 'books', quantity: 2, unitPriceMinor: 1250, unitCostMinor: 800 };
const at = '2026-01-31T10:00:00.000Z';
const samples: Record<string, Record<string, unknown>> = {
  RegisterProspect: { customerId: 'c-1', source: 'web', channel: 'ads', referredBy: 'c-0', personal: { name: 'Ann', email: 'a@b.c', birthday: '1990-05-17' }, occurredAt: at },
  RecordTouchpoint: { customerId: 'c-1', channel: 'email', direction: 'outbound', kind: 'newsletter', note: 'hi', occurredAt: at },
  RecordPurchase: { customerId: 'c-1', orderId: 'o-1', lines: [line, { ...line, sku: 'SKU-2' }], channel: 'web', occurredAt: at },
  RecordFeedback: { customerId: 'c-1', feedbackId: 'f-1', score: 9, kind: 'praise', employeeId: 'e-1', occurredAt: at },
  ThankCustomer: { customerId: 'c-1', gesture: 'coupon', reason: 'loyalty', valueMinor: 500, occurredAt: at },
  UpdateProfile: { customerId: 'c-1', personal: { phone: '+1 555' }, preferences: { lang: 'en' }, consents: { email: true }, occurredAt: at },
  MarkCustomerLost: { customerId: 'c-1', reason: 'moved away', occurredAt: at },
  ChurnIfInactive: { customerId: 'c-1', occurredAt: at },
  EraseCustomerPersonalData: { customerId: 'c-1', requestedBy: 'dpo', occurredAt: at },
  HireEmployee: { employeeId: 'e-1', name: 'Ann', role: 'advisor', occurredAt: at },
  RecordEmployeeLeft: { employeeId: 'e-1', reason: 'moved', occurredAt: at },
  RecordCampaignSpend: { campaignId: 'spring', spendId: 's-1', channel: 'social', amountMinor: 0, occurredAt: at },
};

const ODD_VALUES: unknown[] = [undefined, null, '', ' ', 'x'.repeat(3000), -1, 1.5, 0, 11, 'not-a-date', '2026-02-30T10:00:00Z', [], [1], [{}], {}, { extra: 1 }, true, 'bad id!'];

/** Changes one field (or adds an unknown one), at the top level or inside a nested object. */
function mutate(data: Record<string, unknown>, random: () => number): Record<string, unknown> {
  const copy = structuredClone(data);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  let target: Record<string, unknown> = copy;
  const nestedKeys = Object.keys(copy).filter((k) => k === 'personal' || k === 'lines');
  if (nestedKeys.length > 0 && random() < 0.3) {
    const key = pick(nestedKeys);
    const nested = copy[key];
    target = (Array.isArray(nested) ? nested[0] : nested) as Record<string, unknown>;
  }
  if (random() < 0.15) target[pick(['extra', 'constructor', 'customerid'])] = 'x';
  else target[pick(Object.keys(target))] = pick(ODD_VALUES);
  return copy;
}

describe('field rules table', () => {
  it('given every command DTO, then the table holds exactly the rules class-validator will check', () => {
    for (const cls of [...Object.values(COMMAND_DTOS), PersonalDataDto, PurchaseLineDto]) {
      const table = fieldRulesOf(cls);
      const expected = classValidatorRules(cls);
      expect([...table.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [field, rule] of table) {
        expect({ field, custom: rule.predicates.length, conditional: rule.optional ? 1 : 0, nested: rule.nested ? 1 : 0 }).toEqual({
          field,
          ...expected.get(field),
        });
      }
    }
  });

  it('given valid commands and thousands of one-field changes to them, then the table never accepts what class-validator refuses', () => {
    const random = seededRandom(7);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const type = Object.keys(samples)[i % 12] as keyof typeof COMMAND_DTOS;
      const data = i < 12 ? samples[type]! : mutate(samples[type]!, random);

      const quick = passesFieldRules(COMMAND_DTOS[type], data);

      if (quick) {
        expect({ type, data, valid: fullyValid(COMMAND_DTOS[type], data) }).toEqual({ type, data, valid: true });
        accepted += 1;
      } else {
        refused += 1;
      }
    }
    // Both paths were exercised: valid samples pass, most mutations are refused.
    expect(accepted).toBeGreaterThanOrEqual(12);
    expect(refused).toBeGreaterThan(1000);
  });

  it('given the unchanged samples, then the table accepts every one of them', () => {
    for (const [type, data] of Object.entries(samples)) {
      expect({ type, quick: passesFieldRules(COMMAND_DTOS[type as keyof typeof COMMAND_DTOS], data) }).toEqual({ type, quick: true });
    }
  });
});

describe('checked copy', () => {
  it('given every valid sample, then the copy equals the input, shares no object with it, and keeps its key order', () => {
    for (const [type, data] of Object.entries(samples)) {
      const copy = copyIfPassesFieldRules(COMMAND_DTOS[type as keyof typeof COMMAND_DTOS], data);
      expect(copy).toEqual(data);
      expect(Object.keys(copy!)).toEqual(Object.keys(data));
      for (const key of Object.keys(data)) {
        if (typeof data[key] === 'object') expect({ key, shared: copy![key] === data[key] }).toEqual({ key, shared: false });
      }
    }
    const purchase = copyIfPassesFieldRules(COMMAND_DTOS.RecordPurchase, samples.RecordPurchase!)!;
    expect((purchase.lines as object[])[0]).not.toBe((samples.RecordPurchase!.lines as object[])[0]);
  });

  it('given a missing required field or an unknown one, then there is no copy', () => {
    const { customerId: _dropped, ...missing } = samples.RecordPurchase!;
    expect(copyIfPassesFieldRules(COMMAND_DTOS.RecordPurchase, missing)).toBeUndefined();
    expect(copyIfPassesFieldRules(COMMAND_DTOS.RecordPurchase, { ...samples.RecordPurchase!, extra: 1 })).toBeUndefined();
    const badLine = { ...samples.RecordPurchase!, lines: [{ ...line, quantity: 0 }] };
    expect(copyIfPassesFieldRules(COMMAND_DTOS.RecordPurchase, badLine)).toBeUndefined();
  });

  it('given a NUL or an unpaired surrogate in any text, a line or a map (value or name), then there is no copy', () => {
    const { RecordPurchase: purchase, UpdateProfile: update, RegisterProspect: register } = samples as Record<string, Record<string, unknown>>;
    for (const [cls, data] of [
      [COMMAND_DTOS.RecordPurchase, { ...purchase, channel: 'web\u0000' }],
      [COMMAND_DTOS.RecordPurchase, { ...purchase, lines: [line, { ...line, category: '\ud800' }] }],
      [COMMAND_DTOS.RegisterProspect, { ...register, personal: { name: 'A\udc00nn' } }],
      [COMMAND_DTOS.UpdateProfile, { ...update, preferences: { lang: 'e\u0000n' } }],
      [COMMAND_DTOS.UpdateProfile, { ...update, consents: { '\ud83d': true } }],
    ] as const) {
      expect({ data, copy: copyIfPassesFieldRules(cls, data) }).toEqual({ data, copy: undefined });
    }
    expect(copyIfPassesFieldRules(COMMAND_DTOS.RegisterProspect, { ...register, personal: { name: 'Zoë 😀' } })).toBeDefined();
  });
});

describe('isIsoDateTime', () => {
  // The general check (regex, calendar, Date.parse), written independently of the toISOString fast path.
  const ZONED = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
  const general = (v: string): boolean => {
    const m = ZONED.exec(v);
    if (!m) return false;
    const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number];
    // years 0–99 are years of the calendar too (Date.UTC would read them as 1900–1999)
    const probe = new Date(0);
    probe.setUTCFullYear(y, mo - 1, d);
    if (probe.getUTCFullYear() !== y || probe.getUTCMonth() !== mo - 1 || probe.getUTCDate() !== d) return false;
    return h <= 23 && mi <= 59 && s <= 59 && !Number.isNaN(Date.parse(v));
  };

  it('given times in toISOString form and every one-character change of them, then it answers as the general check', () => {
    const bases = ['2026-01-31T10:00:00.000Z', '2024-02-29T23:59:59.999Z', '2100-02-28T00:00:00.000Z', '0099-01-01T00:00:00.000Z'];
    const replacements = ['0', '1', '2', '3', '5', '9', '-', ':', 'T', 'Z', '.', '+', ' ', 'x'];
    let accepted = 0;
    let checked = 0;
    for (const base of bases) {
      for (let i = 0; i < base.length; i++) {
        for (const r of replacements) {
          const value = base.slice(0, i) + r + base.slice(i + 1);
          expect({ value, valid: isIsoDateTime(value) }).toEqual({ value, valid: general(value) });
          if (general(value)) accepted += 1;
          checked += 1;
        }
      }
    }
    expect(accepted).toBeGreaterThan(200);
    expect(checked - accepted).toBeGreaterThan(200);
  });
});
