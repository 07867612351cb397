/**
 * Named variants: presets of fit, size and metadata handling that delivery URLs name by their last
 * segment. Options are validated here, on write, so delivery never meets a malformed preset.
 */
import { PictorError, badRequest } from '../errors.js';
import { isPlainObject } from './metadata.js';
import type { Variant, VariantOptions } from './model.js';
import type { MetaStore } from '../store/ports.js';

export const MAX_VARIANTS = 100;
export const BUILT_IN_VARIANT = 'public';
export const VARIANT_FITS = ['scale-down', 'contain', 'cover', 'crop', 'pad'] as const;
export const METADATA_MODES = ['keep', 'copyright', 'none'] as const;
export const MAX_VARIANT_SIDE = 9999;
export const BROWSER_TTL_RANGE = { min: 3600, max: 31_536_000 } as const;

const NAME_PATTERN = /^[A-Za-z0-9]{1,99}$/;
const OPTION_KEYS = new Set(['fit', 'width', 'height', 'metadata', 'browser_ttl']);

/** Variant options as a client sends them: shaped, but not yet checked against the rules below. */
export interface VariantOptionsInput {
  fit?: string;
  width?: number;
  height?: number;
  metadata?: string;
  browser_ttl?: number;
}

export interface VariantInput {
  id: string;
  options: VariantOptionsInput;
  neverRequireSignedURLs?: boolean;
}

export interface VariantEdit {
  options?: VariantOptionsInput;
  neverRequireSignedURLs?: boolean;
}

/** The variant as the API shows it. */
export interface VariantView {
  id: string;
  options: VariantOptions;
  neverRequireSignedURLs: boolean;
}

export function variantView(variant: Variant): VariantView {
  return { id: variant.name, options: variant.options, neverRequireSignedURLs: variant.neverRequireSignedUrls };
}

export function checkBrowserTtl(value: unknown, field: string): number {
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < BROWSER_TTL_RANGE.min ||
    value > BROWSER_TTL_RANGE.max
  ) {
    throw badRequest(`${field} must be a whole number of seconds from ${BROWSER_TTL_RANGE.min} to ${BROWSER_TTL_RANGE.max}`);
  }
  return value;
}

/**
 * Sizes and TTLs are JSON numbers (as the API documents and the SDK sends). JSON cannot tell `1e3`
 * from `1000` once parsed, so any spelling of an in-range whole number is the same value; strings,
 * even digit-only ones, are refused rather than coerced, so a typo never turns into a preset.
 */
function side(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_VARIANT_SIDE) {
    throw badRequest(`options.${field} must be a whole number from 1 to ${MAX_VARIANT_SIDE}`);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string, fallback: T): T {
  if (value === undefined) return fallback;
  const found = allowed.find((a) => a === value);
  if (!found) throw badRequest(`options.${field} must be one of ${allowed.join(', ')}`);
  return found;
}

/** Validates variant options from JSON. Fit defaults to scale-down and metadata to none. */
export function parseVariantOptions(raw: unknown): VariantOptions {
  if (!isPlainObject(raw)) throw badRequest('options must be an object');
  const unknown = Object.keys(raw).filter((key) => !OPTION_KEYS.has(key));
  if (unknown.length > 0) throw badRequest(`Unknown variant option ${unknown.join(', ')}`);
  const width = side(raw.width, 'width');
  const height = side(raw.height, 'height');
  if (width === undefined && height === undefined) throw badRequest('options need a width or a height');
  return {
    fit: oneOf(raw.fit, VARIANT_FITS, 'fit', 'scale-down'),
    metadata: oneOf(raw.metadata, METADATA_MODES, 'metadata', 'none'),
    ...(width !== undefined && { width }),
    ...(height !== undefined && { height }),
    ...(raw.browser_ttl !== undefined && { browser_ttl: checkBrowserTtl(raw.browser_ttl, 'options.browser_ttl') }),
  };
}

export function variantNotFound(): PictorError {
  return new PictorError(5401);
}

export class VariantService {
  constructor(
    private readonly store: MetaStore,
    private readonly now: () => number = Date.now,
  ) {}

  list(accountId: string): Promise<Variant[]> {
    return this.store.listVariants(accountId);
  }

  async get(accountId: string, name: string): Promise<Variant> {
    const variant = await this.store.findVariant(accountId, name);
    if (!variant) throw variantNotFound();
    return variant;
  }

  async create(accountId: string, body: VariantInput): Promise<Variant> {
    if (!NAME_PATTERN.test(body.id)) {
      throw badRequest('Variant id must be 1 to 99 letters and digits');
    }
    const variant: Variant = {
      accountId,
      name: body.id,
      options: parseVariantOptions(body.options),
      neverRequireSignedUrls: body.neverRequireSignedURLs ?? false,
      version: 1,
    };
    // Counted and inserted with the account's writes serialised, so concurrent creates cannot pass the cap.
    await this.store.withAccountLocked(accountId, async (account) => {
      if ((await account.countVariants()) >= MAX_VARIANTS) {
        throw badRequest(`An account can have at most ${MAX_VARIANTS} variants`);
      }
      await account.insertVariant(variant, this.now());
    });
    return variant;
  }

  /** `options` given are validated as a whole after merging over the current ones. */
  async edit(accountId: string, name: string, body: VariantEdit): Promise<Variant> {
    const current = await this.get(accountId, name);
    const options = body.options === undefined ? current.options : parseVariantOptions({ ...current.options, ...body.options });
    const neverRequireSignedUrls = body.neverRequireSignedURLs ?? current.neverRequireSignedUrls;
    const updated = await this.store.updateVariant(accountId, name, { options, neverRequireSignedUrls });
    if (!updated) throw variantNotFound();
    return updated;
  }

  /** The built-in `public` variant is never removed (Cloudflare answers 200 and keeps it). */
  async delete(accountId: string, name: string): Promise<void> {
    if (name === BUILT_IN_VARIANT) {
      await this.get(accountId, name);
      return;
    }
    if (!(await this.store.deleteVariant(accountId, name))) throw variantNotFound();
  }
}
