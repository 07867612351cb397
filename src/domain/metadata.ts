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

export function checkMetadata(value: unknown, maxBytes: number): Metadata {
  if (!isPlainObject(value)) throw badRequest('Metadata must be a JSON object');
  if (Buffer.byteLength(JSON.stringify(value)) > maxBytes) {
    throw badRequest(`Metadata must not exceed ${maxBytes} bytes`);
  }
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
