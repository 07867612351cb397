/** Identifier generation and the custom image id rules. */
import { randomBytes } from 'node:crypto';
import { badRequest } from '../errors.js';

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_CUSTOM_ID_CHARS = 1024;
/**
 * Names of routes under /images/v1/. Image ids travel in the path with raw `/` allowed, so an id whose
 * first segment is one of these would be shadowed by (or worse, act on) that route: an image `keys/k2`
 * deleted with `DELETE …/images/v1/keys/k2` would delete the signing key `k2` instead.
 */
const RESERVED_FIRST_SEGMENTS = new Set(['stats', 'keys', 'variants', 'config', 'batch_token', 'direct_upload']);

export function isUuidShaped(id: string): boolean {
  return UUID_SHAPE.test(id);
}

/** A random 36-char UUID-shaped id (Cloudflare's generated ids are UUID-shaped, not RFC 4122 valid). */
export function generateImageId(): string {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function generateAccountId(): string {
  return randomBytes(16).toString('hex');
}

/** 22 chars: base64url of 16 random bytes, like Cloudflare's account hashes. */
export function generateAccountHash(): string {
  return randomBytes(16).toString('base64url');
}

/** Throws 5400 unless `id` is an acceptable custom id. */
export function validateCustomId(id: string, options: { allowUuid?: boolean } = {}): void {
  const chars = Array.from(id).length;
  if (chars < 1 || chars > MAX_CUSTOM_ID_CHARS) {
    throw badRequest(`Custom id must be 1 to ${MAX_CUSTOM_ID_CHARS} characters long`);
  }
  if (isUuidShaped(id) && !options.allowUuid) throw badRequest('Custom id must not be a UUID');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) throw badRequest('Custom id must not contain control characters');
  // A lone surrogate (possible through JSON's \ud800) cannot be stored or percent-encoded faithfully: the
  // store would keep U+FFFD, so the id answered would not be the id kept.
  if (/\p{Cs}/u.test(id)) throw badRequest('Custom id must be well-formed Unicode (no lone surrogates)');
  if (id.startsWith('/') || id.endsWith('/')) throw badRequest('Custom id must not start or end with "/"');
  const segments = id.split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw badRequest('Custom id must not contain empty, "." or ".." path segments');
    }
  }
  checkRouteCollisions(segments);
}

/** Refuses ids that would be read as another route (see the reserved names above). */
function checkRouteCollisions(segments: string[]): void {
  const first = segments[0] ?? '';
  if (RESERVED_FIRST_SEGMENTS.has(first)) {
    throw badRequest(`Custom id must not start with "${first}": it names an API route`);
  }
  // An id ending in `/blob` stays allowed: its details are `…/v1/a%2Fblob` (the SDK encodes the `/`), while a raw
  // `…/v1/a/blob` is the original of `a`. Both readings are documented, neither acts on another resource.
}
