/**
 * Small units tested directly: metadata filters, bracket metadata, metadata size, custom id rules, the
 * public-address check of URL uploads, number spellings of flexible and named variants, log redaction,
 * the data dir lock.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateCustomId } from '../src/domain/ids.js';
import { matchesMetaFilter, parseMetaFilters } from '../src/domain/meta-filter.js';
import { buildBracketMetadata, bracketPath, checkMetadata, jsonByteLength } from '../src/domain/metadata.js';
import { isPublicAddress } from '../src/domain/url-fetch.js';
import { parseVariantOptions } from '../src/domain/variants.js';
import { redactUrl } from '../src/app.js';
import { PictorError } from '../src/errors.js';
import { parseFlexibleOptions } from '../src/imaging/plan.js';
import { acquireDataDirLock } from '../src/store/data-dir-lock.js';

function filter(query: string) {
  return parseMetaFilters(new URLSearchParams(query).entries());
}

function matches(meta: Record<string, unknown>, query: string): boolean {
  return filter(query).every((f) => matchesMetaFilter(meta, f));
}

describe('metadata filters', () => {
  it('parses paths, operators and in-lists', () => {
    expect(filter('meta.region.name[eq]=eu-west&meta.status[in]=a|b|c&creator=x')).toEqual([
      { path: ['region', 'name'], operator: 'eq', values: ['eu-west'] },
      { path: ['status'], operator: 'in', values: ['a', 'b', 'c'] },
    ]);
    expect(filter('meta.p[gte:number]=1')[0]?.operator).toBe('gte');
  });

  it.each([
    'meta.a[nope]=1',
    'meta.a-b[eq]=1',
    'meta.a.b.c.d.e.f[eq]=1',
    'meta.a[eq:number]=abc',
    'meta.a[gt]=x',
    'meta.a[eq:boolean]=yes',
    'meta.a[in]=1|2|3|4|5|6|7|8|9|10|11',
    'meta.a[eq]=1&meta.b[eq]=1&meta.c[eq]=1&meta.d[eq]=1&meta.e[eq]=1&meta.f[eq]=1',
    'meta.a=1',
  ])('refuses %s with 5400', (query) => {
    expect(() => filter(query)).toThrow(PictorError);
    try {
      filter(query);
    } catch (error) {
      expect((error as PictorError).code).toBe(5400);
    }
  });

  it('evaluates typed and untyped operators', () => {
    const meta = { status: 'active', n: 5, s: '7', flag: true, region: { name: 'eu-west' } };
    expect(matches(meta, 'meta.status[eq]=active')).toBe(true);
    expect(matches(meta, 'meta.status[eq:string]=active')).toBe(true);
    expect(matches(meta, 'meta.n[eq]=5')).toBe(true);
    expect(matches(meta, 'meta.n[eq:string]=5')).toBe(false);
    expect(matches(meta, 'meta.s[eq:number]=7')).toBe(true);
    expect(matches(meta, 'meta.n[gt]=4&meta.n[lte:number]=5')).toBe(true);
    expect(matches(meta, 'meta.n[lt]=5')).toBe(false);
    expect(matches(meta, 'meta.flag[eq:boolean]=true')).toBe(true);
    expect(matches(meta, 'meta.region.name[eq]=eu-west')).toBe(true);
    expect(matches(meta, 'meta.status[in]=pending|active')).toBe(true);
    expect(matches(meta, 'meta.n[in:number]=1|2')).toBe(false);
    expect(matches(meta, 'meta.missing[eq]=x')).toBe(false);
  });
});

describe('bracket metadata', () => {
  it('rebuilds nested objects and arrays with string values', () => {
    const fields = ['metadata[k]=v', 'metadata[nested][a]=true', 'metadata[list][]=1', 'metadata[list][]=2'].map(
      (pair) => {
        const [name = '', value = ''] = pair.split('=');
        return { path: bracketPath(name) ?? [], value };
      },
    );
    expect(buildBracketMetadata(fields)).toEqual({ k: 'v', nested: { a: 'true' }, list: ['1', '2'] });
  });

  it('ignores names that are not bracket metadata and refuses prototype keys', () => {
    expect(bracketPath('metadata')).toBeUndefined();
    expect(bracketPath('metadataX[a]')).toBeUndefined();
    expect(() => buildBracketMetadata([{ path: ['__proto__', 'x'], value: '1' }])).toThrow(PictorError);
  });
});

/** The PictorError code `run` throws (fails the test if it throws anything else or nothing). */
function codeOf(run: () => unknown): number {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PictorError);
    return (error as PictorError).code;
  }
  throw new Error('expected a PictorError, nothing was thrown');
}

describe('metadata filters: prototype names', () => {
  it('an operator named like an Object.prototype member is unsupported (5400), not a crash', () => {
    expect(codeOf(() => filter('meta.a[constructor]=1'))).toBe(5400);
  });

  it('paths read own keys only', () => {
    const meta = JSON.parse('{"a":{"b":"x"}}') as Record<string, unknown>;
    for (const query of ['meta.constructor[eq]=x', 'meta.a.constructor[eq]=x', 'meta.__proto__[eq]=x']) {
      expect(matches(meta, query), query).toBe(false);
    }
    expect(matches(JSON.parse('{"constructor":"x"}') as Record<string, unknown>, 'meta.constructor[eq]=x')).toBe(true);
  });
});

describe('metadata size', () => {
  it('measures exactly what JSON.stringify writes', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const bytes = Buffer.byteLength(JSON.stringify(value));
        expect(jsonByteLength(value, Number.MAX_SAFE_INTEGER)).toBe(bytes);
        expect(jsonByteLength(value, bytes)).toBe(bytes);
        if (bytes > 0) expect(jsonByteLength(value, bytes - 1)).toBe(bytes);
      }),
      { numRuns: 300 },
    );
    expect(jsonByteLength(JSON.parse('{"big":1e400,"s":"\\ud800é"}'), 1024)).toBe(JSON.stringify({ big: null, s: '\ud800é' }).length + 1);
  });

  it.each([
    ['arrays', `{"a":${'['.repeat(30_000)}${']'.repeat(30_000)}}`],
    ['objects', `${'{"a":'.repeat(30_000)}1${'}'.repeat(30_000)}`],
  ])('refuses metadata nested 30,000 deep (%s) with 5400 instead of overflowing the stack', (_label, text) => {
    const value: unknown = JSON.parse(text);
    expect(codeOf(() => checkMetadata(value, 1024))).toBe(5400);
    expect(() => checkMetadata(value, 1024)).toThrow(/must not exceed 1024 bytes/);
  });

  it('keeps the 1024-byte boundary', () => {
    const exact = { k: 'x'.repeat(1024 - '{"k":""}'.length) };
    expect(checkMetadata(exact, 1024)).toBe(exact);
    expect(codeOf(() => checkMetadata({ ...exact, k: `${exact.k}x` }, 1024))).toBe(5400);
  });
});

describe('custom ids', () => {
  it.each(['keys/k2', 'stats/x', 'variants/public', 'config/a/b', 'batch_token/t', 'direct_upload/x', 'keys'])(
    'refuses %j (collides with a route) with 5400',
    (id) => {
      expect(codeOf(() => validateCustomId(id))).toBe(5400);
    },
  );

  it.each(['blob', 'blob/a', 'a/blob', 'a/b/blob', 'a/keys', 'mykeys/x', 'Keys/x', 'a/blobs', 'gallery/blob.jpg'])('accepts %j', (id) => {
    expect(() => validateCustomId(id)).not.toThrow();
  });

  it('refuses lone surrogates (they cannot be stored or encoded faithfully)', () => {
    expect(codeOf(() => validateCustomId('a\ud800b'))).toBe(5400);
    expect(codeOf(() => validateCustomId('\udc00'))).toBe(5400);
    expect(() => validateCustomId('a\u{1F600}b')).not.toThrow();
  });
});

describe('public addresses for URL uploads', () => {
  it.each([
    ['IPv4-compatible loopback', '::7f00:1'],
    ['IPv4-compatible private', '::10.0.0.1'],
    ['IPv4-compatible 0.0.0.2', '::2'],
    ['unspecified', '::'],
    ['loopback', '::1'],
    ['IPv4-mapped loopback', '::ffff:127.0.0.1'],
    ['IPv4-translated loopback', '::ffff:0:127.0.0.1'],
    ['NAT64 of loopback', '64:ff9b::127.0.0.1'],
    ['NAT64 of link-local', '64:ff9b::a9fe:a9fe'],
    ['local-use NAT64 (/96) of private', '64:ff9b:1::10.0.0.1'],
    ['local-use NAT64 (/48) of private', '64:ff9b:1:a00:1::'],
    ['6to4 of loopback', '2002:7f00:1::1'],
    ['6to4 of private', '2002:c0a8:101::'],
    ['Teredo with a private server', '2001:0:a00:1::1'],
    ['Teredo with a public server and a loopback client', '2001:0:808:808::80ff:fffe'],
    ['link-local', 'fe80::1'],
    ['unique local', 'fd00::1'],
    ['IPv4 loopback', '127.0.0.1'],
    ['IPv4 private', '192.168.1.1'],
    ['not an address', 'example.com'],
  ])('refuses %s (%s)', (_label, address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each([
    ['IPv4', '8.8.8.8'],
    ['IPv6', '2606:4700:4700::1111'],
    ['IPv4-mapped public', '::ffff:8.8.8.8'],
    ['IPv4-compatible public', '::808:808'],
    ['NAT64 of public', '64:ff9b::8.8.8.8'],
    ['6to4 of public', '2002:808:808::1'],
    ['Teredo with public server and client', '2001:0:808:808::f7f7:f7f7'],
  ])('allows %s (%s)', (_label, address) => {
    expect(isPublicAddress(address)).toBe(true);
  });
});

describe('number spellings', () => {
  it.each(['w=1e3', 'w=0x10', 'w=%205', 'w=+5', 'w=5.0', 'w=-5', 'w=5%20', 'w=', 'h=1_0', 'q=5.5', 'q=constructor', 'q=toString',
    'rotate=9e1', 'trim=1;2;3;0x4', 'trim.width=1e2', 'dpr=1e0', 'dpr=+1', 'dpr=1.', 'blur=0x5', 'sharpen=Infinity',
    'brightness=%201', 'gamma=1e0', 'saturation=-0', 'gravity=1e-1x0.5', 'g=0.5x+0.5', 'g=.5x'])(
    'flexible %s → 9401',
    (options) => {
      expect(codeOf(() => parseFlexibleOptions(options))).toBe(9401);
    },
  );

  it('plain integers and decimals still parse', () => {
    expect(parseFlexibleOptions('w=640,h=480,q=80,rotate=90,dpr=1.5,blur=.5,g=0.25x1')).toMatchObject({
      width: 960,
      height: 720,
      quality: 80,
      rotate: 90,
      blur: 0.5,
      gravity: { kind: 'point', x: 0.25, y: 1 },
    });
    expect(parseFlexibleOptions('q=medium-high,trim=1;2;3;4').quality).toBe(75);
  });

  it('named variants take JSON numbers only: digit strings are refused, 1e3 from JSON is 1000', () => {
    expect(parseVariantOptions(JSON.parse('{"width":1e3,"height":2.0E2}'))).toMatchObject({ width: 1000, height: 200 });
    for (const bad of [{ width: '100' }, { height: '0x10' }, { width: 1.5 }, { width: 1e4 }, { width: 100, browser_ttl: '3600' }]) {
      expect(codeOf(() => parseVariantOptions(bad)), JSON.stringify(bad)).toBe(5400);
    }
  });
});

describe('log redaction', () => {
  it('hides signatures and direct-upload secrets in logged URLs', () => {
    expect(redactUrl('/h/id/public?exp=1&sig=abcdef')).toBe('/h/id/public?exp=1&sig=[redacted]');
    expect(redactUrl('/h/id/public?sig=abcdef&exp=1')).toBe('/h/id/public?sig=[redacted]&exp=1');
    expect(redactUrl('/upload/HASH/s3cr3t')).toBe('/upload/HASH/[redacted]');
    expect(redactUrl('/client/v4/accounts/a/images/v1')).toBe('/client/v4/accounts/a/images/v1');
  });
});

describe('data dir lock', () => {
  it('refuses a live owner and takes over from a dead or zombie one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-lock-'));
    const release = acquireDataDirLock(dir);
    const other = spawn('sleep', ['30']);
    try {
      fs.writeFileSync(path.join(dir, 'pictor.pid'), String(other.pid));
      expect(() => acquireDataDirLock(dir)).toThrow(/in use by another Pictor server/);
      // Killed but not reaped yet (the event loop is kept busy): a zombie holds nothing.
      other.kill('SIGKILL');
      const until = Date.now() + 300;
      while (Date.now() < until) {
        // busy-wait so Node cannot reap the child
      }
      acquireDataDirLock(dir)();
    } finally {
      other.kill('SIGKILL');
      release();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
