/**
 * Fetches an upload's source URL safely: http(s) only, a time limit, a byte cap enforced while
 * streaming, at most N redirects, and no connections to loopback, private, link-local, multicast or
 * unspecified addresses unless the operator allows them. The address check runs on the address the
 * socket actually connects to (a custom DNS lookup), so DNS rebinding cannot slip past it, and again
 * on every redirect hop.
 */
import dns from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, request } from 'undici';
import type { UrlFetchSettings } from '../config.js';
import { PictorError, badRequest } from '../errors.js';

export interface FetchedFile {
  bytes: Buffer;
  filename: string;
}

/** The 32 bits of `parts` (16-bit groups) starting at group `index`, as an IPv4 address. */
function ipv4At(parts: number[], index: number, mask = 0): ipaddr.IPv4 {
  const high = (parts[index] ?? 0) ^ (mask >>> 16);
  const low = (parts[index + 1] ?? 0) ^ (mask & 0xffff);
  return new ipaddr.IPv4([high >>> 8, high & 0xff, low >>> 8, low & 0xff]);
}

/**
 * The IPv4 addresses an IPv6 address carries, for the forms that reach an IPv4 host through it
 * (a kernel, a translator or a tunnel relay connects to the IPv4 inside); undefined for any other
 * IPv6 address. Each of these is only as public as the IPv4 it carries.
 */
export function embeddedIPv4(v6: ipaddr.IPv6): ipaddr.IPv4[] | undefined {
  const p = v6.parts;
  const zeros = (from: number, to: number): boolean => p.slice(from, to).every((part) => part === 0);
  // ::a.b.c.d (IPv4-compatible, ::/96; `::` and `::1` carry 0.0.0.0 and 0.0.0.1, never public),
  // ::ffff:a.b.c.d (IPv4-mapped) and ::ffff:0:a.b.c.d (IPv4-translated, RFC 6145).
  if (zeros(0, 5) && (p[5] === 0 || p[5] === 0xffff)) return [ipv4At(p, 6)];
  if (zeros(0, 4) && p[4] === 0xffff && p[5] === 0) return [ipv4At(p, 6)];
  // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
  if (p[0] === 0x64 && p[1] === 0xff9b && zeros(2, 6)) return [ipv4At(p, 6)];
  // NAT64 local-use 64:ff9b:1::/48 (RFC 8215): the operator picks the RFC 6052 prefix length (48, 56,
  // 64 or 96), which the address does not say, so every place the IPv4 could sit must be public.
  if (p[0] === 0x64 && p[1] === 0xff9b && p[2] === 1) return rfc6052Candidates(p);
  // 6to4 2002::/16 (RFC 3056): the IPv4 is bits 16-47.
  if (p[0] === 0x2002) return [ipv4At(p, 1)];
  // Teredo 2001::/32 (RFC 4380): the server's IPv4 in bits 32-63, the client's in the last 32 bits
  // with every bit inverted.
  if (p[0] === 0x2001 && p[1] === 0) return [ipv4At(p, 2), ipv4At(p, 6, 0xffffffff)];
  return undefined;
}

/** Where RFC 6052 puts the IPv4 for prefixes of 48, 56, 64 and 96 bits (bits 64-71 are skipped). */
function rfc6052Candidates(p: number[]): ipaddr.IPv4[] {
  const bytes = p.flatMap((part) => [part >>> 8, part & 0xff]);
  const octets = (indexes: number[]): ipaddr.IPv4 => new ipaddr.IPv4(indexes.map((i) => bytes[i] ?? 0));
  return [octets([6, 7, 9, 10]), octets([7, 9, 10, 11]), octets([9, 10, 11, 12]), octets([12, 13, 14, 15])];
}

export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv4') return parsed.range() === 'unicast';
  const v6 = parsed as ipaddr.IPv6;
  const carried = embeddedIPv4(v6);
  if (carried !== undefined) return carried.every((v4) => v4.range() === 'unicast');
  return v6.range() === 'unicast';
}

const REFUSED = 'URL points to a private, loopback or link-local address';

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** dns.lookup that refuses non-public answers; handles both the single and the `all: true` form. */
function safeLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '');
    const refused = addresses.find((a) => !isPublicAddress(a.address));
    if (refused || addresses.length === 0) {
      const denied = Object.assign(new Error(REFUSED), { code: 'EPICTORDENIED' });
      return callback(denied, '');
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0] as dns.LookupAddress;
    return callback(null, first.address, first.family);
  });
}

/**
 * The Authorization header for credentials in the URL. A malformed percent-encoding in them (`%zz`)
 * is refused rather than sent as typed: the credential would reach the origin in a form the user did
 * not mean, and guessing at a secret is worse than asking for a correct URL.
 */
function basicAuthorization(url: URL): string {
  let user: string;
  let pass: string;
  try {
    user = decodeURIComponent(url.username);
    pass = decodeURIComponent(url.password);
  } catch {
    throw badRequest('The url field is malformed: its user name or password is not correctly percent-encoded');
  }
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

/** What is sent for `url`: the URL without `user:password@`, and those as Basic auth beside `headers`. */
function credentialsAsHeader(url: URL, headers: Record<string, string>): { target: URL; headers: Record<string, string> } {
  if (!url.username && !url.password) return { target: url, headers };
  const target = new URL(url);
  target.username = '';
  target.password = '';
  return { target, headers: { ...headers, authorization: basicAuthorization(url) } };
}

/** A redirect's Location against the URL that answered; a Location that is no URL fails the fetch. */
function resolveLocation(location: string, base: URL): string {
  try {
    return new URL(location, base).toString();
  } catch {
    throw badRequest('Fetching the image URL failed: the origin redirected to a malformed URL');
  }
}

function filenameOf(url: URL): string {
  const last = url.pathname.split('/').filter(Boolean).pop() ?? '';
  let name: string;
  try {
    name = decodeURIComponent(last);
  } catch {
    name = last;
  }
  return name === '' ? url.hostname : name;
}

/** A failed upload fetch in the API's words. */
function uploadError(failure: FetchFailure): PictorError {
  switch (failure.kind) {
    case 'refused':
      return badRequest(REFUSED);
    case 'timeout':
      return badRequest('Fetching the image URL timed out');
    case 'network':
      return badRequest(`Fetching the image URL failed: ${failure.detail}`);
    case 'too-many-redirects':
      return badRequest(`Too many redirects fetching the image URL (limit ${failure.limit})`);
    case 'redirect-not-allowed':
      return badRequest('Fetching the image URL failed: the origin redirected to a URL that is not allowed');
    case 'status':
      return badRequest(`Fetching the image URL failed: the origin answered HTTP ${failure.status}`);
    case 'too-large':
      return new PictorError(5413);
  }
}

/** Why a fetch failed, for each caller to put in its own words and codes. */
export type FetchFailure =
  | { kind: 'refused' }
  | { kind: 'timeout' }
  | { kind: 'network'; detail: string }
  | { kind: 'too-many-redirects'; limit: number }
  | { kind: 'redirect-not-allowed'; location: string }
  | { kind: 'status'; status: number }
  | { kind: 'too-large' };

export class FetchFailed extends Error {
  constructor(readonly failure: FetchFailure) {
    super(failure.kind);
  }
}

/** An origin's answer, after redirects: 200 with the body, or 304 to a conditional request. */
export interface OriginAnswer {
  url: URL;
  status: 200 | 304;
  headers: Record<string, string | string[] | undefined>;
  bytes: Buffer;
}

export interface ExchangeOptions {
  headers: Record<string, string>;
  /** Whether a redirect may go to `url` (every hop is checked against the address rules too). */
  followRedirectTo?: (url: URL) => boolean;
}

export class UrlFetcher {
  private readonly agent: Agent;

  constructor(
    private readonly settings: UrlFetchSettings & { allowPrivate: boolean; maxBytes: number },
  ) {
    this.agent = new Agent({
      connect: settings.allowPrivate ? { timeout: settings.timeoutMs } : { timeout: settings.timeoutMs, lookup: safeLookup },
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
    });
  }

  /** An upload's source: the bytes, or a 5400/5413 error worded for the API. */
  async fetch(rawUrl: string): Promise<FetchedFile> {
    const url = this.parse(rawUrl);
    try {
      const answer = await this.exchange(url, { headers: { 'user-agent': 'Pictor/1 (+image upload)', accept: 'image/*' } });
      return { bytes: answer.bytes, filename: filenameOf(url) };
    } catch (error) {
      if (!(error instanceof FetchFailed)) throw error;
      throw uploadError(error.failure);
    }
  }

  /**
   * One request (and its redirects) under the address rules, the time limit and the byte cap. A 304 is
   * an answer when the request was conditional; any other status but 200 is a `status` failure.
   */
  async exchange(start: URL, options: ExchangeOptions): Promise<OriginAnswer> {
    let url = start;
    const deadline = AbortSignal.timeout(this.settings.timeoutMs);
    for (let redirects = 0; ; redirects++) {
      this.checkLiteralHost(url);
      const { target, headers } = credentialsAsHeader(url, options.headers);
      let response: Awaited<ReturnType<typeof request>>;
      try {
        response = await request(target, { dispatcher: this.agent, headers, signal: deadline });
      } catch (error) {
        throw new FetchFailed(this.describe(error));
      }
      const { statusCode } = response;
      if (statusCode >= 300 && statusCode < 400 && statusCode !== 304 && response.headers.location) {
        response.body.resume();
        if (redirects >= this.settings.maxRedirects) throw new FetchFailed({ kind: 'too-many-redirects', limit: this.settings.maxRedirects });
        const location = Array.isArray(response.headers.location) ? response.headers.location[0] : response.headers.location;
        url = this.parse(resolveLocation(location ?? '', target));
        if (options.followRedirectTo && !options.followRedirectTo(url)) throw new FetchFailed({ kind: 'redirect-not-allowed', location: url.toString() });
        continue;
      }
      if (statusCode === 304 && (headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined)) {
        response.body.resume();
        return { url, status: 304, headers: response.headers, bytes: Buffer.alloc(0) };
      }
      if (statusCode !== 200) {
        response.body.resume();
        throw new FetchFailed({ kind: 'status', status: statusCode });
      }
      try {
        return { url, status: 200, headers: response.headers, bytes: await this.readCapped(response.body) };
      } catch (error) {
        // The time limit covers the body too: a drip-fed body is a failed fetch, not a server error.
        throw error instanceof FetchFailed ? error : new FetchFailed(this.describe(error));
      }
    }
  }

  /**
   * POSTs `body` once under the same address rules and time limit (webhooks): no redirects followed (a
   * 3xx is the receiver's answer), the answer's body discarded. Resolves with the status; a connection
   * that fails or times out is a FetchFailed.
   */
  async post(url: URL, body: string, headers: Record<string, string>): Promise<number> {
    this.checkLiteralHost(url);
    const sent = credentialsAsHeader(url, headers);
    try {
      const response = await request(sent.target, {
        method: 'POST',
        dispatcher: this.agent,
        headers: sent.headers,
        body,
        signal: AbortSignal.timeout(this.settings.timeoutMs),
      });
      await response.body.dump({ limit: 64 * 1024 });
      return response.statusCode;
    } catch (error) {
      throw new FetchFailed(this.describe(error));
    }
  }

  parse(rawUrl: string): URL {
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      throw badRequest('The url field must be an absolute http or https URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw badRequest('The url field must be an absolute http or https URL');
    }
    return url;
  }

  /** A literal IP in the URL never goes through DNS lookup, so it is checked here. */
  private checkLiteralHost(url: URL): void {
    if (this.settings.allowPrivate) return;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (net.isIP(host) !== 0 && !isPublicAddress(host)) throw new FetchFailed({ kind: 'refused' });
    if (host === 'localhost' || host.endsWith('.localhost')) throw new FetchFailed({ kind: 'refused' });
  }

  private async readCapped(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of body) {
      total += chunk.length;
      if (total > this.settings.maxBytes) {
        body.destroy();
        throw new FetchFailed({ kind: 'too-large' });
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  }

  private describe(error: unknown): FetchFailure {
    const err = error as { code?: string; name?: string; message?: string; cause?: { code?: string } };
    if (err.code === 'EPICTORDENIED' || err.cause?.code === 'EPICTORDENIED') return { kind: 'refused' };
    if (err.name === 'TimeoutError' || err.name === 'AbortError' || err.code?.includes('TIMEOUT')) return { kind: 'timeout' };
    return { kind: 'network', detail: err.code ?? err.message ?? 'network error' };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
