/**
 * Reads the credentials a client presented, with Cloudflare's errors: malformed or missing headers are
 * 400 code 6003 (chain 6111 for Authorization, 6103 for X-Auth-Key/X-Auth-Email); everything well formed
 * is looked up and, if unknown, revoked, for another account or lacking permission, is 403 code 10000.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { TOKEN_PATTERN } from '../config.js';
import { type PresentedCredential, permits } from '../domain/accounts.js';
import type { Credential, Permission } from '../domain/model.js';
import { PictorError } from '../errors.js';

const BAD_AUTHORIZATION = { code: 6111, message: 'Invalid format for Authorization header' };
const BAD_AUTH_KEY = { code: 6103, message: 'Invalid format for X-Auth-Key header' };

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function presentedCredential(headers: IncomingHttpHeaders): PresentedCredential {
  const authorization = header(headers, 'authorization');
  if (authorization !== undefined) {
    const match = /^Bearer (.*)$/i.exec(authorization);
    const token = match?.[1];
    if (token === undefined || !TOKEN_PATTERN.test(token)) {
      throw new PictorError(6003, undefined, { chain: [BAD_AUTHORIZATION] });
    }
    return { kind: 'token', token };
  }
  const email = header(headers, 'x-auth-email');
  const key = header(headers, 'x-auth-key');
  if (email === undefined && key === undefined) {
    throw new PictorError(6003, undefined, { chain: [BAD_AUTHORIZATION] });
  }
  if (!email || !key || !TOKEN_PATTERN.test(key) || /\s/.test(email)) {
    throw new PictorError(6003, undefined, { chain: [BAD_AUTH_KEY] });
  }
  return { kind: 'key', email, key };
}

export function neededPermission(method: string): Permission {
  return method === 'GET' || method === 'HEAD' ? 'images:read' : 'images:write';
}

/** Throws 403 10000 unless the credential may do `needed` on `accountId`. Says nothing about why. */
export function authorize(credential: Credential | undefined, accountId: string, needed: Permission): void {
  if (!credential || credential.accountId !== accountId || !permits(credential.permission, needed)) {
    throw new PictorError(10000);
  }
}
