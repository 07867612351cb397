/**
 * Signed delivery URLs made in the browser, by Cloudflare's algorithm (the same one the server checks):
 * HMAC-SHA256, keyed with the signing key's UTF-8 bytes, of the path from `/<account_hash>` plus `?` and
 * the query without `sig`; the lowercase hex digest is appended as `sig`.
 */

const DELIVERY_PREFIX = '/cdn-cgi/imagedelivery';

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** `url` with `exp` (now + `seconds`) and its signature. */
export async function signDeliveryUrl(url: string, key: string, seconds: number): Promise<string> {
  const parsed = new URL(url);
  parsed.searchParams.set('exp', String(Math.floor(Date.now() / 1000) + seconds));
  const path = parsed.pathname.startsWith(`${DELIVERY_PREFIX}/`) ? parsed.pathname.slice(DELIVERY_PREFIX.length) : parsed.pathname;
  const encoder = new TextEncoder();
  const cryptoKey = await crypto.subtle.importKey('raw', encoder.encode(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const signature = await crypto.subtle.sign('HMAC', cryptoKey, encoder.encode(`${path}?${parsed.searchParams.toString()}`));
  parsed.searchParams.set('sig', hex(signature));
  return parsed.toString();
}
