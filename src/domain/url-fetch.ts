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

export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) parsed = v6.toIPv4Address();
  }
  return parsed.range() === 'unicast';
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

  async fetch(rawUrl: string): Promise<FetchedFile> {
    let url = this.parse(rawUrl);
    const filename = filenameOf(url);
    const deadline = AbortSignal.timeout(this.settings.timeoutMs);
    for (let redirects = 0; ; redirects++) {
      this.checkLiteralHost(url);
      const headers: Record<string, string> = { 'user-agent': 'Pictor/1 (+image upload)', accept: 'image/*' };
      if (url.username || url.password) {
        const user = decodeURIComponent(url.username);
        const pass = decodeURIComponent(url.password);
        headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      }
      const target = new URL(url);
      target.username = '';
      target.password = '';
      let response: Awaited<ReturnType<typeof request>>;
      try {
        response = await request(target, { dispatcher: this.agent, headers, signal: deadline });
      } catch (error) {
        throw this.describe(error);
      }
      const { statusCode } = response;
      if (statusCode >= 300 && statusCode < 400 && response.headers.location) {
        response.body.resume();
        if (redirects >= this.settings.maxRedirects) {
          throw badRequest(`Too many redirects fetching the image URL (limit ${this.settings.maxRedirects})`);
        }
        const location = Array.isArray(response.headers.location) ? response.headers.location[0] : response.headers.location;
        url = this.parse(new URL(location ?? '', target).toString());
        continue;
      }
      if (statusCode !== 200) {
        response.body.resume();
        throw badRequest(`Fetching the image URL failed: the origin answered HTTP ${statusCode}`);
      }
      try {
        return { bytes: await this.readCapped(response.body), filename };
      } catch (error) {
        // The time limit covers the body too: a drip-fed body is a failed fetch, not a server error.
        throw error instanceof PictorError ? error : this.describe(error);
      }
    }
  }

  private parse(rawUrl: string): URL {
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
    if (net.isIP(host) !== 0 && !isPublicAddress(host)) throw badRequest(REFUSED);
    if (host === 'localhost' || host.endsWith('.localhost')) throw badRequest(REFUSED);
  }

  private async readCapped(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of body) {
      total += chunk.length;
      if (total > this.settings.maxBytes) {
        body.destroy();
        throw new PictorError(5413);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  }

  private describe(error: unknown): PictorError {
    const err = error as { code?: string; name?: string; message?: string; cause?: { code?: string } };
    if (err.code === 'EPICTORDENIED' || err.cause?.code === 'EPICTORDENIED') return badRequest(REFUSED);
    if (err.name === 'TimeoutError' || err.name === 'AbortError' || err.code?.includes('TIMEOUT')) {
      return badRequest('Fetching the image URL timed out');
    }
    return badRequest(`Fetching the image URL failed: ${err.code ?? err.message ?? 'network error'}`);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
