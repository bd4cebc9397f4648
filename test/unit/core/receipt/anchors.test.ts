import { describe, expect, it } from 'vitest';
import {
  collectAnchors,
  normalizeAddress,
  normalizePhone,
  normalizeUrl,
  titleCase,
} from '../../../../core/receipt/anchors.js';

describe('anchor normalisation', () => {
  it('phones: digits only, leading 1 of 11 digits stripped, exactly 10, not all the same digit', () => {
    expect(normalizePhone('(619) 555-0134')).toBe('6195550134');
    expect(normalizePhone('+1 619.555.0134')).toBe('6195550134');
    expect(normalizePhone('555-0134')).toBeUndefined();
    expect(normalizePhone('2 619 555 0134')).toBeUndefined();
    expect(normalizePhone('(111) 111-1111')).toBeUndefined();
    expect(normalizePhone('')).toBeUndefined();
  });

  it('addresses: upper case, punctuation stripped, street words abbreviated, spaces collapsed', () => {
    expect(normalizeAddress('1234 Mission Gorge Road,  San Diego, CA 92120')).toBe(
      '1234 MISSION GORGE RD SAN DIEGO CA 92120',
    );
    expect(normalizeAddress('88 Thousand Oaks Boulevard Suite 4')).toBe('88 THOUSAND OAKS BLVD STE 4');
    expect(normalizeAddress('1 Main Street, Apartment 2')).toBe('1 MAIN ST APT 2');
    expect(normalizeAddress(' , ')).toBeUndefined();
  });

  it('urls: host and path, no scheme/www/query/fragment/trailing slash; e-mails rejected', () => {
    expect(normalizeUrl('https://www.Sprouts.com/')).toBe('sprouts.com');
    expect(normalizeUrl('HTTP://bluebottlecoffee.com//menu//?x=1#top')).toBe('bluebottlecoffee.com/menu');
    expect(normalizeUrl('www.walgreens.com/store')).toBe('walgreens.com/store');
    expect(normalizeUrl('info@sprouts.com')).toBeUndefined();
    expect(normalizeUrl('mailto:info@sprouts.com')).toBeUndefined();
    expect(normalizeUrl('not a url')).toBeUndefined();
  });

  it('collects the first anchor of each kind', () => {
    expect(
      collectAnchors([
        null,
        { type: 'date', value: '01/01/2025' },
        { type: 'phone', value: '555' },
        { type: 'phone', value: '(619) 555-0134' },
        { type: 'phone', value: '(805) 555-0178' },
        { type: 'url', value: 'www.sprouts.com' },
      ]),
    ).toEqual({ normalized_phone_10: '6195550134', normalized_url: 'sprouts.com' });
  });

  it('title-cases merchant names', () => {
    expect(titleCase("  TRADER JOE'S ")).toBe("Trader Joe's");
    expect(titleCase('in-n-out burger')).toBe('In-N-Out Burger');
  });
});
