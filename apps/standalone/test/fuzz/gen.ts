/**
 * Seeded generators of bad input for the fuzz suite: the same seed gives the same requests, so a
 * failure found once can be replayed (FUZZ_SEED).
 */
export type Rng = () => number;

/** mulberry32: small, fast, and good enough to pick cases. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** encodeURIComponent, with lone surrogates (which it refuses) made '?'. */
export function enc(text: string): string {
  return encodeURIComponent(text.replace(/[\ud800-\udfff]/g, (c, i: number, all: string) => (/[\ud800-\udbff][\udc00-\udfff]/.test(all.slice(i, i + 2)) || /[\ud800-\udbff][\udc00-\udfff]/.test(all.slice(i - 1, i + 1)) ? c : '?')));
}

export const int = (r: Rng, min: number, max: number): number => min + Math.floor(r() * (max - min + 1));
export const pick = <T>(r: Rng, items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;
export const chance = (r: Rng, p: number): boolean => r() < p;

const NASTY_CHARS = ['\u0000', '\u0001', '\u001b', '\u007f', '\u0085', '\u200b', '\u202e', '\u2028', '\ud800', '\udfff', '\ufeff', '"', "'", '\\', '<', '>', '&', '%', '/', '..', ' ', '\t', '\n', '\r', '弹', '🎉', 'ß', 'İ'];

export function nastyString(r: Rng, maxLength = 80): string {
  const kind = int(r, 0, 9);
  switch (kind) {
    case 0:
      return '';
    case 1:
      return 'x'.repeat(int(r, 90, 6000));
    case 2:
      return pick(r, ['null', 'undefined', 'true', '0', '-1', 'NaN', '1e309', '[]', '{}', '__proto__', 'constructor', '<script>alert(1)</script>', '../../etc/passwd', '%00', '${7*7}', "' OR 1=1 --"]);
    default: {
      let out = '';
      const n = int(r, 1, maxLength);
      for (let i = 0; i < n; i++) out += chance(r, 0.3) ? pick(r, NASTY_CHARS) : String.fromCharCode(int(r, 0x20, 0x7e));
      return out;
    }
  }
}

/** A path segment that is bad in some way (or sometimes fine, to reach the handler). */
export function pathSegment(r: Rng): string {
  const kind = int(r, 0, 11);
  switch (kind) {
    case 0:
    case 1:
      return `fz-${int(r, 0, 50)}`;
    case 2:
      return 'a'.repeat(int(r, 65, 140));
    case 3:
      return pick(r, ['%ff', '%', '%g0', '%00', '%2e%2e', '%2f', '%c0%af', '%E2%80%AE', '%0a', '%20']);
    case 4:
      return enc(nastyString(r, 20)) || 'x';
    case 5:
      return pick(r, ['..', '.', '-', '_', '弹幕', 'null', '0', '-1', '1e400']);
    case 6:
      return `${int(r, 0, 1e9)}`;
    case 7:
      return 'x'.repeat(int(r, 500, 3000));
    default:
      return enc(nastyString(r, 12)) || 'y';
  }
}

/** A JSON value, random in shape, sometimes with fields a route knows. */
export function jsonValue(r: Rng, fields: readonly string[], depth = 0): unknown {
  const kind = int(r, 0, depth > 3 ? 5 : 9);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return chance(r, 0.5);
    case 2:
      return pick(r, [0, -1, 1, 1.5, -0, 2 ** 53 + 1, 1e308, -1e308, 10_000, 99_999, 4.2e-300]);
    case 3:
    case 4:
      return nastyString(r);
    case 5:
      return pick(r, ['comment', 'gift', 'like', 'enter', 'system', 'admin', 'viewer', 'streamer', 'rose', '*']);
    case 6:
      return Array.from({ length: int(r, 0, 5) }, () => jsonValue(r, fields, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      const n = int(r, 0, 6);
      for (let i = 0; i < n; i++) {
        const key = chance(r, 0.75) && fields.length > 0 ? pick(r, fields) : pick(r, ['__proto__', 'constructor', 'prototype', nastyString(r, 10), 'extra']);
        object[key] = jsonValue(r, fields, depth + 1);
      }
      return object;
    }
  }
}

/** A request body: JSON of any shape, invalid JSON, huge or deeply nested text. */
export function body(r: Rng, fields: readonly string[]): string {
  const kind = int(r, 0, 11);
  switch (kind) {
    case 0:
      return '';
    case 1:
      return pick(r, ['{', '{"a":', '[]]', '{"type":"comment",}', 'nul', '\u0000', '{"a":1}{"b":2}', "{'a':1}", '{"a":NaN}', '\ufeff{}']);
    case 2:
      return '['.repeat(int(r, 100, 3000));
    case 3:
      return JSON.stringify({ pad: 'x'.repeat(int(r, 4000, 9000)) });
    case 4:
      return '{"__proto__":{"admin":true},"constructor":{"prototype":{"polluted":1}}}';
    default:
      return JSON.stringify(jsonValue(r, fields)) ?? 'null';
  }
}

export function query(r: Rng, keys: readonly string[]): string {
  const n = int(r, 0, 4);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = chance(r, 0.7) && keys.length > 0 ? pick(r, keys) : enc(nastyString(r, 8)) || 'k';
    const value = chance(r, 0.2) ? pick(r, ['%ff', '%', '%00', '']) : enc(String(jsonValue(r, [], 4)));
    parts.push(chance(r, 0.1) ? key : `${key}=${value}`);
  }
  return parts.length > 0 ? `?${parts.join('&')}` : chance(r, 0.1) ? '?' : '';
}
