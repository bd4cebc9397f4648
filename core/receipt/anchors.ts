/**
 * Anchor normalisation (docs/adr/0010-embedding-inputs-and-metadata.md): phone, address and URL values from Apple's
 * data detectors (`extracted_data`) become comparable keys for vector metadata and merchant resolution.
 */

/** Digits only; an 11-digit number starting with 1 loses the 1; must be exactly 10 digits, not all the same. */
export function normalizePhone(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  let digits = value.replace(/\D/g, '');
  if (digits.length === 11 && digits.startsWith('1')) digits = digits.slice(1);
  if (digits.length !== 10) return undefined;
  if (/^(\d)\1{9}$/.test(digits)) return undefined;
  return digits;
}

const ADDRESS_WORDS: Record<string, string> = {
  STREET: 'ST',
  ROAD: 'RD',
  AVENUE: 'AVE',
  BOULEVARD: 'BLVD',
  DRIVE: 'DR',
  LANE: 'LN',
  HIGHWAY: 'HWY',
  PARKWAY: 'PKWY',
  SUITE: 'STE',
  APARTMENT: 'APT',
};

/** Upper-case, punctuation stripped, spaces collapsed, street-type words abbreviated. */
export function normalizeAddress(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const tokens = value
    .toUpperCase()
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .split(/\s+/)
    .filter(Boolean)
    .map((t) => ADDRESS_WORDS[t] ?? t);
  return tokens.length ? tokens.join(' ') : undefined;
}

/** Lower-case host + path without scheme, `www.`, query, fragment, duplicate or trailing slashes; e-mails rejected. */
export function normalizeUrl(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  let s = value.trim().toLowerCase();
  if (!s || /\s/.test(s)) return undefined;
  if (s.startsWith('mailto:') || /^[^/@]+@[^/@]+\.[a-z]{2,}$/.test(s)) return undefined;
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  s = s.replace(/[?#].*$/, '');
  s = s.replace(/\/{2,}/g, '/');
  s = s.replace(/^www\./, '');
  s = s.replace(/\/+$/, '');
  if (!s || s.includes('@') || !/^[a-z0-9-]+(\.[a-z0-9-]+)+(\/|$)/.test(s)) return undefined;
  return s;
}

export type AnchorKind = 'phone' | 'address' | 'url';

/** Maps a data-detector type to an anchor kind ("phoneNumber", "link", … are accepted too). */
export function anchorKind(type: string | undefined): AnchorKind | undefined {
  const t = (type ?? '').toLowerCase();
  if (t === 'phone' || t === 'phone_number' || t === 'phonenumber') return 'phone';
  if (t === 'address') return 'address';
  if (t === 'url' || t === 'link' || t === 'website') return 'url';
  return undefined;
}

export interface Anchors {
  normalized_phone_10?: string;
  normalized_full_address?: string;
  normalized_url?: string;
}

export const ANCHOR_KEYS = {
  phone: 'normalized_phone_10',
  address: 'normalized_full_address',
  url: 'normalized_url',
} as const satisfies Record<AnchorKind, keyof Anchors>;

/** The normalised anchor of one `extracted_data` value, if it is an anchor and normalises. */
export function anchorOf(
  data: { type: string; value: string } | null | undefined,
): { kind: AnchorKind; value: string } | undefined {
  if (!data) return undefined;
  const kind = anchorKind(data.type);
  if (!kind) return undefined;
  const value =
    kind === 'phone'
      ? normalizePhone(data.value)
      : kind === 'address'
        ? normalizeAddress(data.value)
        : normalizeUrl(data.value);
  return value ? { kind, value } : undefined;
}

/** First anchor of each kind among the data values, in order. */
export function collectAnchors(
  values: Iterable<{ type: string; value: string } | null | undefined>,
): Anchors {
  const out: Anchors = {};
  for (const v of values) {
    const a = anchorOf(v);
    if (a && out[ANCHOR_KEYS[a.kind]] === undefined) out[ANCHOR_KEYS[a.kind]] = a.value;
  }
  return out;
}

/** "  joe's   PIZZA co " → "Joe's Pizza Co" (merchant names in metadata). */
export function titleCase(name: string): string {
  return name
    .trim()
    .replace(/\s+/g, ' ')
    .toLowerCase()
    .replace(/(^|[\s\-/&(])(\p{L})/gu, (_, sep: string, c: string) => sep + c.toUpperCase());
}
