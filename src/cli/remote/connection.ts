/**
 * Where a remote command works: an Images API base (`…/client/v4`), an account and a token, from flags
 * or from the environment names the SDK and wrangler use. Problems are `ConnectionError`s: the CLI prints
 * their one line and exits 2 before doing anything.
 */

export interface Connection {
  /** The API base, ending in `/client/v4` (no trailing slash). */
  apiBase: string;
  accountId: string;
  token: string;
}

export class ConnectionError extends Error {}

export const CLOUDFLARE_API_BASE = 'https://api.cloudflare.com/client/v4';

export interface ConnectionFlags {
  url?: string;
  account?: string;
  token?: string;
}

function normalizedBase(url: string, what: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectionError(`${what} is not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConnectionError(`${what} must be an http(s) URL: ${url}`);
  return parsed.toString().replace(/\/+$/, '');
}

/** The target connection: flags first, then PICTOR_API_URL, CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN. */
export function connectionFrom(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Connection {
  const url = flags.url ?? env.PICTOR_API_URL;
  const accountId = flags.account ?? env.CLOUDFLARE_ACCOUNT_ID;
  const token = flags.token ?? env.CLOUDFLARE_API_TOKEN;
  const missing = [
    url === undefined || url === '' ? '--url (or PICTOR_API_URL)' : undefined,
    accountId === undefined || accountId === '' ? '--account (or CLOUDFLARE_ACCOUNT_ID)' : undefined,
    token === undefined || token === '' ? '--token (or CLOUDFLARE_API_TOKEN)' : undefined,
  ].filter((item): item is string => item !== undefined);
  if (missing.length > 0 || url === undefined || accountId === undefined || token === undefined) {
    throw new ConnectionError(`missing ${missing.join(', ')}`);
  }
  return { apiBase: normalizedBase(url, '--url'), accountId, token };
}
