import { normalizeAddress, normalizePhone } from '../receipt/anchors.js';

/**
 * Pluggable place lookup (the original's Google Places tier). Off by default: no provider ships with the worker,
 * because it needs an external API and key. A provider gets the receipt's anchors and answers with at most one place;
 * the resolver validates it against the receipt before accepting it.
 */
export interface PlaceQuery {
  /** Normalised 10-digit phone. */
  phone?: string;
  /** Normalised full address. */
  address?: string;
  /** Top line of the receipt, as a text hint. */
  nameHint?: string;
}

export interface PlaceCandidate {
  name: string;
  placeId?: string;
  phone?: string;
  address?: string;
  types?: string[];
}

export interface PlaceLookup {
  readonly name: string;
  find(query: PlaceQuery, options?: { signal?: AbortSignal }): Promise<PlaceCandidate | undefined>;
}

/** A fixed table of places, keyed by phone or address: for tests and local demos. */
export class StaticPlaceLookup implements PlaceLookup {
  readonly name = 'static';
  constructor(private readonly places: PlaceCandidate[]) {}

  async find(q: PlaceQuery): Promise<PlaceCandidate | undefined> {
    return this.places.find(
      (p) =>
        (q.phone && normalizePhone(p.phone) === q.phone) ||
        (q.address && normalizeAddress(p.address) === q.address),
    );
  }
}
