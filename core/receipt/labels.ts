/** Word labels and how they become vector metadata (docs/adr/0010-embedding-inputs-and-metadata.md). */
export const CORE_LABELS = [
  'MERCHANT_NAME',
  'STORE_HOURS',
  'PHONE_NUMBER',
  'WEBSITE',
  'LOYALTY_ID',
  'ADDRESS_LINE',
  'DATE',
  'TIME',
  'PAYMENT_METHOD',
  'COUPON',
  'DISCOUNT',
  'PRODUCT_NAME',
  'QUANTITY',
  'UNIT_PRICE',
  'LINE_TOTAL',
  'SUBTOTAL',
  'TAX',
  'TIP',
  'GRAND_TOTAL',
  'CHANGE',
  'CASH_BACK',
  'REFUND',
] as const;
const CORE = new Set<string>(CORE_LABELS);

export interface WordLabel {
  line_id: number;
  word_id: number;
  label: string;
  validation_status: 'NONE' | 'PENDING' | 'VALID' | 'INVALID' | 'NEEDS_REVIEW' | string;
  timestamp_added?: string;
  label_proposed_by?: string | null;
}

export type LabelStatus = 'validated' | 'auto_suggested' | 'unvalidated';

export interface LabelSummary {
  label_status: LabelStatus;
  valid: string[];
  invalid: string[];
  validatedAt?: string;
  proposedBy?: string;
}

const byTime = (a: WordLabel, b: WordLabel) =>
  (a.timestamp_added ?? '').localeCompare(b.timestamp_added ?? '');

/**
 * Summarises the labels of one word (`rowMode` false: a label both VALID and INVALID counts as valid) or of one
 * row's words (`rowMode` true: the last VALID/INVALID status seen, in time order, decides).
 */
export function summarizeLabels(labels: WordLabel[], rowMode = false): LabelSummary {
  const core = labels.filter((l) => CORE.has(l.label)).sort(byTime);
  const state = new Map<string, 'VALID' | 'INVALID'>();
  for (const l of core) {
    if (l.validation_status !== 'VALID' && l.validation_status !== 'INVALID') continue;
    if (!rowMode && state.get(l.label) === 'VALID') continue;
    state.set(l.label, l.validation_status);
  }
  const valid = [...state]
    .filter(([, s]) => s === 'VALID')
    .map(([l]) => l)
    .sort();
  const invalid = [...state]
    .filter(([, s]) => s === 'INVALID')
    .map(([l]) => l)
    .sort();
  const pending = core.filter((l) => l.validation_status === 'PENDING');
  const validated = core.filter((l) => l.validation_status === 'VALID');
  return {
    label_status: valid.length ? 'validated' : pending.length ? 'auto_suggested' : 'unvalidated',
    valid,
    invalid,
    validatedAt: validated.at(-1)?.timestamp_added,
    proposedBy: pending.at(-1)?.label_proposed_by ?? undefined,
  };
}

export const labelKey = (lineId: number, wordId: number) => `${lineId}:${wordId}`;
