/**
 * Signed delivery URLs, Cloudflare's algorithm: the string to sign is the path starting at
 * `/<account_hash>` (no `/cdn-cgi/imagedelivery` prefix) + `?` + the query without `sig`, in the order
 * received; `sig` is the lowercase hex HMAC-SHA256 of it keyed with the signing key's UTF-8 bytes.
 * `exp` (Unix seconds) is optional; when present and past, the URL is refused.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureCheck = { valid: true; exp: number | undefined } | { valid: false; reason: string };

const SIG_PATTERN = /^[0-9a-f]{64}$/;

export function signPath(stringToSign: string, key: string): string {
  return createHmac('sha256', Buffer.from(key, 'utf8')).update(stringToSign, 'utf8').digest('hex');
}

export function checkSignature(options: {
  path: string;
  rawQuery: string;
  keys: string[];
  nowSeconds: number;
}): SignatureCheck {
  const params = options.rawQuery === '' ? [] : options.rawQuery.split('&');
  const sigs = params.filter((p) => p.startsWith('sig='));
  const rest = params.filter((p) => !p.startsWith('sig='));
  if (sigs.length !== 1) return { valid: false, reason: 'missing signature' };
  const sig = (sigs[0] as string).slice(4).toLowerCase();
  if (!SIG_PATTERN.test(sig)) return { valid: false, reason: 'malformed signature' };

  const expParam = rest.find((p) => p.startsWith('exp='));
  let exp: number | undefined;
  if (expParam !== undefined) {
    const text = expParam.slice(4);
    if (!/^\d{1,12}$/.test(text)) return { valid: false, reason: 'malformed exp' };
    exp = Number(text);
    if (exp <= options.nowSeconds) return { valid: false, reason: 'expired' };
  }

  // Without other parameters, signers differ on whether the trailing "?" is part of the string.
  const candidates = rest.length > 0 ? [`${options.path}?${rest.join('&')}`] : [`${options.path}?`, options.path];
  const presented = Buffer.from(sig, 'hex');
  for (const key of options.keys) {
    for (const candidate of candidates) {
      if (timingSafeEqual(Buffer.from(signPath(candidate, key), 'hex'), presented)) return { valid: true, exp };
    }
  }
  return { valid: false, reason: 'signature does not match' };
}
