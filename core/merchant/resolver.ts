import { receiptPrefix } from '../contracts/ids.js';
import { similarity } from '../contracts/vector-distance.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { VectorStore } from '../ports/vector-store.js';
import { normalizeAddress, normalizePhone, titleCase } from '../receipt/anchors.js';
import type { ReceiptInput, ReceiptItems } from '../receipt/embedding-inputs.js';
import { isNoise } from '../receipt/geometry.js';
import type { PlaceLookup } from './place-lookup.js';

/**
 * Merchant resolution (the original system's, without its LLM tier; worker/README.md, step 4): an optional place
 * lookup keyed on the receipt's phone/address, then similarity against the live `lines` snapshot using the receipt's
 * own row vectors (no extra embedding calls): phone row, address row, top row. Never throws: a failure leaves the
 * merchant empty and says why.
 */
export interface MerchantResult {
  name?: string;
  tier?: 'place_lookup' | 'chroma_phone' | 'chroma_address' | 'chroma_text';
  score?: number;
  placeId?: string;
  /** Human-readable: how it was resolved, or why not. */
  reason: string;
}

export const THRESHOLDS = {
  minSimilarity: 0.7,
  anchor: 0.7,
  text: 0.85,
  phoneBonus: 0.2,
  addressBonus: 0.15,
  nResults: 20,
};

export interface ResolveArgs {
  receipt: ReceiptInput;
  items: ReceiptItems;
  /** Vectors of `items.lines`, same order. */
  rowVectors: Float32Array[];
  /** The opened `lines` snapshot, or why there is none. */
  index: VectorStore | { unavailable: string };
  placeLookup?: PlaceLookup;
  log?: Logger;
}

interface Candidate {
  name: string;
  score: number;
  id: string;
}

export async function resolveMerchant(a: ResolveArgs): Promise<MerchantResult> {
  try {
    return await resolve(a);
  } catch (err) {
    a.log?.warn({ err }, 'merchant resolution failed');
    return { reason: `resolution failed: ${errorMessage(err)}` };
  }
}

async function resolve(a: ResolveArgs): Promise<MerchantResult> {
  const { receipt, items } = a;
  const words = receipt.words.filter((w) => !isNoise(w));
  const phoneWord = words.find(
    (w) => w.extracted_data && normalizePhone(w.extracted_data.value) && /phone/i.test(w.extracted_data.type),
  );
  const addressWord = words.find(
    (w) => w.extracted_data?.type.toLowerCase() === 'address' && normalizeAddress(w.extracted_data.value),
  );
  const phone = phoneWord ? normalizePhone(phoneWord.extracted_data!.value) : undefined;
  const address = addressWord ? normalizeAddress(addressWord.extracted_data!.value) : undefined;
  const ocrTokens = tokens(receipt.lines.map((l) => l.text).join(' '));
  const receiptState = stateOf(address);

  if (a.placeLookup && (phone || address)) {
    const place = await a.placeLookup.find({ phone, address, nameHint: items.rows[0]?.text });
    if (place) {
      const placePhone = normalizePhone(place.phone);
      const placeAddress = normalizeAddress(place.address);
      const phoneOk = Boolean(phone && placePhone === phone);
      const addressOk = Boolean(address && placeAddress && addressSimilar(address, placeAddress));
      const stateOk = !receiptState || !stateOf(placeAddress) || stateOf(placeAddress) === receiptState;
      if ((phoneOk || addressOk) && stateOk && overlaps(place.name, ocrTokens)) {
        return {
          name: titleCase(place.name),
          tier: 'place_lookup',
          score: 1,
          ...(place.placeId ? { placeId: place.placeId } : {}),
          reason: `${a.placeLookup.name} place matched by ${phoneOk ? 'phone' : 'address'}`,
        };
      }
    }
  }

  if ('unavailable' in a.index) return { reason: a.index.unavailable };
  const store = a.index;
  const own = receiptPrefix(receipt.imageId, receipt.receiptId) + '#';
  const rowIndex = (lineId: number | undefined) =>
    lineId === undefined ? undefined : items.rowOfLine.get(lineId);
  const tiers: { tier: NonNullable<MerchantResult['tier']>; row: number | undefined; threshold: number }[] = [
    { tier: 'chroma_phone', row: rowIndex(phoneWord?.line_id), threshold: THRESHOLDS.anchor },
    { tier: 'chroma_address', row: rowIndex(addressWord?.line_id), threshold: THRESHOLDS.anchor },
    { tier: 'chroma_text', row: items.lines.length ? 0 : undefined, threshold: THRESHOLDS.text },
  ];
  let best: (Candidate & { tier: string }) | undefined;
  const tried = new Set<number>();
  const live = tiers.filter((t) => {
    if (t.row === undefined || tried.has(t.row)) return false;
    tried.add(t.row);
    return true;
  });
  // The queries run together; the tiers are still decided in order.
  const results = await Promise.all(
    live.map((t) => store.query('lines', a.rowVectors[t.row!]!, THRESHOLDS.nResults)),
  );
  for (const [k, t] of live.entries()) {
    const hits = results[k]!;
    let top: Candidate | undefined;
    for (const h of hits) {
      if (h.id.startsWith(own)) continue;
      const sim = similarity(h.distance);
      if (!(sim >= THRESHOLDS.minSimilarity)) continue;
      const name = typeof h.metadata?.merchant_name === 'string' ? h.metadata.merchant_name.trim() : '';
      if (!name || !overlaps(name, ocrTokens)) continue;
      const hitAddress =
        typeof h.metadata?.normalized_full_address === 'string'
          ? h.metadata.normalized_full_address
          : undefined;
      const hitState = stateOf(hitAddress);
      if (receiptState && hitState && hitState !== receiptState) continue;
      let score = sim;
      if (phone && h.metadata?.normalized_phone_10 === phone) score += THRESHOLDS.phoneBonus;
      if (address && hitAddress && addressSimilar(address, hitAddress)) score += THRESHOLDS.addressBonus;
      score = Math.min(1, score);
      if (!top || score > top.score) top = { name, score, id: h.id };
    }
    if (top && (!best || top.score > best.score)) best = { ...top, tier: t.tier };
    if (top && top.score >= t.threshold) {
      return {
        name: titleCase(top.name),
        tier: t.tier,
        score: round(top.score),
        reason: `${t.tier}: ${round(top.score)} via ${top.id}`,
      };
    }
  }
  if (tried.size === 0) return { reason: 'no rows to query with' };
  return {
    reason: best
      ? `no match above threshold (best ${titleCase(best.name)} ${round(best.score)} via ${best.tier})`
      : 'no similar receipt with a merchant in the lines snapshot',
  };
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/** Upper-case alphanumeric tokens of at least 3 characters. */
function tokens(text: string): Set<string> {
  return new Set(
    text
      .toUpperCase()
      .replace(/['’]/g, '')
      .split(/[^\p{L}\p{N}]+/u)
      .filter((t) => t.length >= 3),
  );
}

/** Token-overlap guard: a merchant name must share a token (≥ 3 chars) with the receipt's OCR text. */
function overlaps(name: string, ocr: Set<string>): boolean {
  for (const t of tokens(name)) if (ocr.has(t)) return true;
  return false;
}

/** Two-letter state before a ZIP code in a normalised address. */
function stateOf(address: string | undefined): string | undefined {
  return address ? /\b([A-Z]{2}) \d{5}\b/.exec(address)?.[1] : undefined;
}

/** Fuzzy address match: same house number and street word, or token Jaccard ≥ 0.6. */
export function addressSimilar(a: string, b: string): boolean {
  const ta = a.split(' ');
  const tb = b.split(' ');
  if (ta.length >= 2 && tb.length >= 2 && ta[0] === tb[0] && ta[1] === tb[1]) return true;
  const sa = new Set(ta);
  const sb = new Set(tb);
  let inter = 0;
  for (const t of sa) if (sb.has(t)) inter++;
  return inter / (sa.size + sb.size - inter) >= 0.6;
}
