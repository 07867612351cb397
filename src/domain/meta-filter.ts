/**
 * Metadata filters of `GET /images/v2` (`meta.<path>[<op>]=<value>`), parsed once into `MetaFilter`
 * values and evaluated by `matchesMetaFilter`. The metadata store runs the same evaluation inside
 * the database (SQLite registers it as a SQL function), so semantics live in this one file.
 *
 * Values uploaded in the SDK's bracket form arrive as strings, so numeric and boolean operators
 * also accept strings that spell a number or a boolean.
 */
import { badRequest } from '../errors.js';
import type { Metadata, MetaFilter, MetaFilterOperator } from './model.js';

const MAX_FILTERS = 5;
const MAX_DEPTH = 5;
const MAX_IN_VALUES = 10;
const FIELD_PATTERN = /^[A-Za-z0-9_]{1,100}$/;
const FILTER_KEY = /^meta\.(.+)\[([a-z:]+)\]$/;

/**
 * A Map, not an object literal: `[a-z:]+` admits `constructor`, which an object literal would resolve
 * to Object.prototype's member instead of "unsupported operator".
 */
const OPERATORS = new Map<string, MetaFilterOperator>(Object.entries({
  eq: 'eq',
  'eq:string': 'eq:string',
  'eq:number': 'eq:number',
  'eq:boolean': 'eq:boolean',
  gt: 'gt',
  'gt:number': 'gt',
  gte: 'gte',
  'gte:number': 'gte',
  lt: 'lt',
  'lt:number': 'lt',
  lte: 'lte',
  'lte:number': 'lte',
  in: 'in',
  'in:string': 'in:string',
  'in:number': 'in:number',
} satisfies Record<string, MetaFilterOperator>));

const NUMERIC_OPERATORS = new Set<MetaFilterOperator>(['eq:number', 'gt', 'gte', 'lt', 'lte', 'in:number']);

/**
 * Text that counts as a number: plain decimal notation only (`-12`, `3.5`). JavaScript's Number() also
 * reads hex, exponents and padded text, which SQL casts read differently; the narrow rule is the one every
 * metadata store (SQLite through this file, PostgreSQL in SQL) applies identically.
 */
const STRICT_NUMBER = /^-?\d+(\.\d+)?$/;

export function isStrictNumber(text: string): boolean {
  return STRICT_NUMBER.test(text);
}

function parseNumber(text: string): number | undefined {
  if (!isStrictNumber(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** Parses every `meta.*` query parameter; throws 5400 for anything malformed. */
export function parseMetaFilters(query: Iterable<[string, string]>): MetaFilter[] {
  const filters: MetaFilter[] = [];
  for (const [key, raw] of query) {
    if (!key.startsWith('meta.')) continue;
    const match = FILTER_KEY.exec(key);
    if (!match) throw badRequest(`Invalid metadata filter "${key}": expected meta.<field>[<operator>]`);
    const [, pathText = '', opText = ''] = match;
    const operator = OPERATORS.get(opText);
    if (!operator) throw badRequest(`Unsupported metadata filter operator "${opText}"`);
    const path = pathText.split('.');
    if (path.length > MAX_DEPTH) throw badRequest(`Metadata filter "${key}" is nested deeper than ${MAX_DEPTH} levels`);
    if (!path.every((segment) => FIELD_PATTERN.test(segment))) {
      throw badRequest(`Invalid metadata field name in "${key}": use letters, digits and underscores`);
    }
    const values = operator.startsWith('in') ? raw.split('|') : [raw];
    if (values.length > MAX_IN_VALUES) throw badRequest(`At most ${MAX_IN_VALUES} values are allowed in "${key}"`);
    if (NUMERIC_OPERATORS.has(operator) && values.some((v) => parseNumber(v) === undefined)) {
      throw badRequest(`Metadata filter "${key}" needs a number`);
    }
    if (operator === 'eq:boolean' && raw !== 'true' && raw !== 'false') {
      throw badRequest(`Metadata filter "${key}" needs true or false`);
    }
    filters.push({ path, operator, values });
  }
  if (filters.length > MAX_FILTERS) throw badRequest(`At most ${MAX_FILTERS} metadata filters are allowed`);
  return filters;
}

function valueAt(meta: Metadata, path: string[]): unknown {
  let current: unknown = meta;
  for (const segment of path) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    // Own keys only: `meta.constructor[eq]=…` must not read Object.prototype.constructor.
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function asNumber(stored: unknown): number | undefined {
  if (typeof stored === 'number') return stored;
  if (typeof stored === 'string') return parseNumber(stored);
  return undefined;
}

function asBoolean(stored: unknown): boolean | undefined {
  if (typeof stored === 'boolean') return stored;
  if (stored === 'true') return true;
  if (stored === 'false') return false;
  return undefined;
}

function equalsLoosely(stored: unknown, expected: string): boolean {
  if (typeof stored === 'string') return stored === expected;
  if (typeof stored === 'number') return stored === parseNumber(expected);
  if (typeof stored === 'boolean') return String(stored) === expected;
  return false;
}

function compareNumber(stored: unknown, expected: string, test: (a: number, b: number) => boolean): boolean {
  const a = asNumber(stored);
  const b = parseNumber(expected);
  return a !== undefined && b !== undefined && test(a, b);
}

function matchesOne(stored: unknown, operator: MetaFilterOperator, expected: string): boolean {
  switch (operator) {
    case 'eq':
    case 'in':
      return equalsLoosely(stored, expected);
    case 'eq:string':
    case 'in:string':
      return typeof stored === 'string' && stored === expected;
    case 'eq:number':
    case 'in:number':
      return compareNumber(stored, expected, (a, b) => a === b);
    case 'eq:boolean':
      return asBoolean(stored) === (expected === 'true');
    case 'gt':
      return compareNumber(stored, expected, (a, b) => a > b);
    case 'gte':
      return compareNumber(stored, expected, (a, b) => a >= b);
    case 'lt':
      return compareNumber(stored, expected, (a, b) => a < b);
    case 'lte':
      return compareNumber(stored, expected, (a, b) => a <= b);
  }
}

export function matchesMetaFilter(meta: Metadata, filter: MetaFilter): boolean {
  const stored = valueAt(meta, filter.path);
  if (stored === undefined) return false;
  return filter.values.some((expected) => matchesOne(stored, filter.operator, expected));
}
