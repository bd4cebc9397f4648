import { describe, expect, it } from 'vitest';
import { embedText } from '../../../../core/embedding/local-embedder.js';
import { StaticPlaceLookup } from '../../../../core/merchant/place-lookup.js';
import { addressSimilar, resolveMerchant } from '../../../../core/merchant/resolver.js';
import type { QueryHit, VectorStore } from '../../../../core/ports/vector-store.js';
import { buildReceiptItems } from '../../../../core/receipt/embedding-inputs.js';
import { generateReceipt } from '../../../../core/sample/index.js';
import { Semaphore } from '../../../../core/concurrency.js';
import { runIdFor } from '../../../../worker/run-id.js';

const r = generateReceipt(77, { merchant: 2, branch: 0 }); // Home Depot, San Diego, (619) 555-0111
const receipt = { imageId: r.imageId, receiptId: r.receiptId, lines: r.lines, words: r.words };
const items = buildReceiptItems(receipt);
const rowVectors = items.lines.map((i) => embedText(i.input, 16));

/** A store that answers every query with the given hits (distance = 2·(1 − similarity)). */
function storeWith(
  hits: { sim: number; metadata: Record<string, string | number>; id?: string }[],
): VectorStore {
  const answer: QueryHit[] = hits.map((h, i) => ({
    id: h.id ?? `IMAGE#other#RECEIPT#00001#LINE#${String(i).padStart(5, '0')}`,
    distance: 2 * (1 - h.sim),
    document: null,
    metadata: h.metadata,
  }));
  return { query: async () => answer } as unknown as VectorStore;
}
const resolve = (index: Parameters<typeof resolveMerchant>[0]['index'], extra = {}) =>
  resolveMerchant({ receipt, items, rowVectors, index, ...extra });

describe('merchant resolver', () => {
  it('accepts a phone-tier neighbour with the phone bonus', async () => {
    const res = await resolve(
      storeWith([
        { sim: 0.72, metadata: { merchant_name: 'Home Depot', normalized_phone_10: '6195550111' } },
      ]),
    );
    expect(res).toMatchObject({ name: 'Home Depot', tier: 'chroma_phone', score: 0.92 });
  });

  it('rejects names with no token in the receipt text, low similarity, state conflicts and its own receipt', async () => {
    const own = `IMAGE#${r.imageId}#RECEIPT#${String(r.receiptId).padStart(5, '0')}#LINE#00001`;
    const res = await resolve(
      storeWith([
        { sim: 0.99, metadata: { merchant_name: 'Walgreens' } },
        { sim: 0.65, metadata: { merchant_name: 'Home Depot' } },
        {
          sim: 0.95,
          metadata: {
            merchant_name: 'Home Depot',
            normalized_full_address: '2455 CHESHIRE BRIDGE RD ATLANTA GA 30324',
          },
        },
        { sim: 0.99, metadata: { merchant_name: 'Home Depot' }, id: own },
      ]),
    );
    expect(res.name).toBeUndefined();
    expect(res.reason).toMatch(/no similar receipt/);
  });

  it('needs 0.85 on the top-row tier alone', async () => {
    const receiptNoAnchors = {
      ...receipt,
      words: receipt.words.map((w) => ({ ...w, extracted_data: null })),
    };
    const res = await resolveMerchant({
      receipt: receiptNoAnchors,
      items,
      rowVectors,
      index: storeWith([{ sim: 0.8, metadata: { merchant_name: 'Home Depot' } }]),
    });
    expect(res.name).toBeUndefined();
    expect(res.reason).toMatch(/best Home Depot 0.8 via chroma_text/);
  });

  it('uses a place lookup first when one is configured, and never throws', async () => {
    const places = new StaticPlaceLookup([
      { name: 'THE HOME DEPOT', phone: '(619) 555-0111', placeId: 'p1' },
    ]);
    expect(await resolve({ unavailable: 'no lines snapshot yet' }, { placeLookup: places })).toMatchObject({
      name: 'The Home Depot',
      tier: 'place_lookup',
      placeId: 'p1',
    });
    const broken = { query: async () => Promise.reject(new Error('boom')) } as unknown as VectorStore;
    expect(await resolve(broken)).toEqual({ reason: 'resolution failed: boom' });
    expect(await resolve({ unavailable: 'no lines snapshot yet' })).toEqual({
      reason: 'no lines snapshot yet',
    });
  });

  it('compares addresses fuzzily', () => {
    expect(
      addressSimilar('5920 FAIRMOUNT AVE SAN DIEGO CA 92120', '5920 FAIRMOUNT AVE STE 1 SAN DIEGO CA 92120'),
    ).toBe(true);
    expect(addressSimilar('5920 FAIRMOUNT AVE SAN DIEGO CA 92120', '700 SIXTH AVE NEW YORK NY 10010')).toBe(
      false,
    );
  });
});

describe('run ids and concurrency helpers', () => {
  it('run ids are UUID v5, stable per attempt and different across attempts', () => {
    const a = runIdFor({ name: 'ej-1', uid: 'u-1' }, 'ejw-abc');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(runIdFor({ name: 'ej-1', uid: 'u-1' }, 'ejw-abc')).toBe(a);
    expect(runIdFor({ name: 'ej-1', uid: 'u-1' }, 'ejw-def')).not.toBe(a);
    expect(runIdFor({ name: 'ej-1', uid: 'u-2' }, 'ejw-abc')).not.toBe(a);
  });

  it('Semaphore bounds concurrency', async () => {
    const sem = new Semaphore(2);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        sem.run(async () => {
          peak = Math.max(peak, ++active);
          await new Promise((res) => setTimeout(res, 5));
          active--;
        }),
      ),
    );
    expect(peak).toBe(2);
  });
});
