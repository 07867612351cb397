/**
 * User metadata: a JSON object of at most 1024 bytes. Multipart uploads carry it either as one
 * JSON-string `metadata` field (curl, the documented form) or as bracket-flattened fields
 * `metadata[a][b]=v` (the official SDK); both become the same object.
 */
import { badRequest } from '../errors.js';
import type { Metadata } from './model.js';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Bytes of a JSON primitive as JSON.stringify writes it (a number too large for a double, which
 * JSON.parse reads as Infinity, is written as `null`, as before); undefined for values JSON cannot hold.
 */
function primitiveJsonBytes(value: unknown): number | undefined {
  if (value === null || typeof value === 'boolean' || typeof value === 'string' || typeof value === 'number') {
    return Buffer.byteLength(JSON.stringify(value));
  }
  return undefined;
}

/**
 * The UTF-8 size of `JSON.stringify(value)`, computed with an explicit stack instead of recursion, and
 * abandoned (returning `limit + 1`) as soon as it passes `limit`. JSON.parse builds values nested
 * tens of thousands deep from a 64 KB field, and JSON.stringify on those overflows the call stack;
 * here every container costs at least two bytes, so nesting deeper than limit / 2 stops the walk
 * after at most `limit` steps, whatever the shape.
 */
export function jsonByteLength(value: unknown, limit: number): number {
  let total = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const current = pending.pop();
    if (Array.isArray(current)) {
      // Brackets and the commas between elements.
      total += 2 + Math.max(0, current.length - 1);
      if (total > limit) return limit + 1;
      for (const element of current) pending.push(element);
    } else if (current !== null && typeof current === 'object') {
      const entries = Object.entries(current);
      total += 2 + Math.max(0, entries.length - 1);
      for (const [key, child] of entries) {
        // The quoted key and its colon.
        total += Buffer.byteLength(JSON.stringify(key)) + 1;
        if (total > limit) return limit + 1;
        pending.push(child);
      }
    } else {
      const bytes = primitiveJsonBytes(current);
      if (bytes === undefined) throw badRequest('Metadata must hold only JSON values');
      total += bytes;
    }
    if (total > limit) return limit + 1;
  }
  return total;
}

export function checkMetadata(value: unknown, maxBytes: number): Metadata {
  if (!isPlainObject(value)) throw badRequest('Metadata must be a JSON object');
  if (jsonByteLength(value, maxBytes) > maxBytes) {
    throw badRequest(`Metadata must not exceed ${maxBytes} bytes`);
  }
  // PostgreSQL's jsonb holds neither U+0000 nor lone surrogates; refusing them everywhere keeps both stores
  // alike and metadata filters working. (Safe to walk now: within maxBytes the nesting is shallow.)
  const unholdable = (text: string): boolean => text.includes('\u0000') || /\p{Cs}/u.test(text);
  let refused = false;
  JSON.stringify(value, (key: string, child: unknown) => {
    if (unholdable(key) || (typeof child === 'string' && unholdable(child))) refused = true;
    return child;
  });
  if (refused) throw badRequest('Metadata must not contain U+0000 or unpaired surrogates');
  return value;
}

export function parseMetadataJson(text: string, maxBytes: number): Metadata {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('Metadata must be valid JSON');
  }
  return checkMetadata(value, maxBytes);
}

const BRACKET_KEY = /^metadata((?:\[[^[\]]*\])+)$/;

/** Parses `metadata[a][b]` into ["a","b"]; undefined if the field is not a bracket metadata key. */
export function bracketPath(fieldName: string): string[] | undefined {
  const match = BRACKET_KEY.exec(fieldName);
  if (!match?.[1]) return undefined;
  return match[1].slice(1, -1).split('][');
}

/** Rebuilds an object from bracket fields; values stay strings, `key[]` segments build arrays. */
export function buildBracketMetadata(fields: Array<{ path: string[]; value: string }>): Metadata {
  const root: Record<string, unknown> = {};
  for (const { path, value } of fields) {
    let node: Record<string, unknown> | unknown[] = root;
    path.forEach((segment, index) => {
      const last = index === path.length - 1;
      if (Array.isArray(node)) {
        if (segment !== '') throw badRequest('Malformed metadata field');
        if (last) node.push(value);
        else {
          const child = {};
          node.push(child);
          node = child;
        }
        return;
      }
      if (segment === '' || segment === '__proto__' || segment === 'constructor' || segment === 'prototype') {
        throw badRequest('Malformed metadata field name');
      }
      if (last) {
        node[segment] = value;
        return;
      }
      const wantsArray = path[index + 1] === '';
      const existing = node[segment];
      if (existing === undefined) node[segment] = wantsArray ? [] : {};
      else if (Array.isArray(existing) !== wantsArray || typeof existing !== 'object') {
        throw badRequest('Conflicting metadata fields');
      }
      node = node[segment] as Record<string, unknown> | unknown[];
    });
  }
  return root;
}
