/** Identifier generation and the custom image id rules. */
import { randomBytes } from 'node:crypto';
import { badRequest } from '../errors.js';

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_CUSTOM_ID_CHARS = 1024;
/** Names under /images/v1/ that are routes, so an image with that id could never be addressed. */
const RESERVED_IDS = new Set(['stats', 'keys', 'variants', 'config', 'batch_token', 'direct_upload']);

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
export function validateCustomId(id: string): void {
  const chars = Array.from(id).length;
  if (chars < 1 || chars > MAX_CUSTOM_ID_CHARS) {
    throw badRequest(`Custom id must be 1 to ${MAX_CUSTOM_ID_CHARS} characters long`);
  }
  if (isUuidShaped(id)) throw badRequest('Custom id must not be a UUID');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) throw badRequest('Custom id must not contain control characters');
  if (id.startsWith('/') || id.endsWith('/')) throw badRequest('Custom id must not start or end with "/"');
  for (const segment of id.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw badRequest('Custom id must not contain empty, "." or ".." path segments');
    }
  }
  if (RESERVED_IDS.has(id)) throw badRequest(`Custom id "${id}" is reserved`);
}
