/** Small units tested directly: metadata filters, bracket metadata, log redaction, the data dir lock. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { matchesMetaFilter, parseMetaFilters } from '../src/domain/meta-filter.js';
import { buildBracketMetadata, bracketPath } from '../src/domain/metadata.js';
import { redactUrl } from '../src/app.js';
import { PictorError } from '../src/errors.js';
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
