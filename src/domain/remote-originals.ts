/**
 * Sources of remote transformations (`/cdn-cgi/image/<options>/<source URL>`): fetched from allow-listed
 * origins through the SSRF-safe fetcher (address rules, time limit, byte cap, redirects only to allowed
 * origins), kept by their HTTP validators and the origin's Cache-Control, and fetched once for any number
 * of concurrent requests. A kept source past its freshness is revalidated with If-None-Match /
 * If-Modified-Since; a 304 keeps the bytes. Failures are Cloudflare's 9xxx codes.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { PictorError } from '../errors.js';
import type { RenderCacheStore } from '../store/ports.js';
import { FetchFailed, type FetchFailure, type UrlFetcher } from './url-fetch.js';

export interface RemoteSource {
  url: string;
  bytes: Buffer;
  /** sha256 of the bytes: renditions are keyed by it, so a changed source never serves old renders. */
  sha256: string;
  /** How the fetch went: from memory or the cache while fresh, revalidated (304), or fetched. */
  outcome: 'fresh' | 'revalidated' | 'fetched';
}

interface KeptSource {
  bytes: Buffer;
  sha256: string;
  etag?: string;
  lastModified?: string;
  storedAt: number;
  /** Fresh for this long after storedAt; 0 = revalidate every time. */
  maxAgeMs: number;
}

export interface RemoteOriginsOptions {
  /** Allowed origins (`https://images.example.com`); empty = remote transformations are off. */
  origins: readonly string[];
  now: () => number;
  /** Memory kept for recent sources. */
  memoryBytes: number;
}

const HEADER_LENGTH_BYTES = 4;

/** Kept sources live in the render cache as a length-prefixed JSON header followed by the bytes. */
function encodeKept(kept: KeptSource): Buffer {
  const header = Buffer.from(JSON.stringify({ ...kept, bytes: undefined }));
  const length = Buffer.alloc(HEADER_LENGTH_BYTES);
  length.writeUInt32BE(header.length);
  return Buffer.concat([length, header, kept.bytes]);
}

function decodeKept(stored: Buffer): KeptSource | undefined {
  try {
    const length = stored.readUInt32BE(0);
    const header = JSON.parse(stored.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + length).toString('utf8')) as Omit<KeptSource, 'bytes'>;
    return { ...header, bytes: stored.subarray(HEADER_LENGTH_BYTES + length) };
  } catch {
    return undefined;
  }
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Freshness from the origin's Cache-Control: s-maxage or max-age; no-cache (and nothing) = revalidate; no-store = keep nothing. */
function freshness(cacheControl: string | undefined): { store: boolean; maxAgeMs: number } {
  const directives = (cacheControl ?? '').toLowerCase().split(',').map((part) => part.trim());
  if (directives.includes('no-store')) return { store: false, maxAgeMs: 0 };
  if (directives.includes('no-cache')) return { store: true, maxAgeMs: 0 };
  const age = (name: string): number | undefined => {
    const found = directives.find((directive) => directive.startsWith(`${name}=`));
    const seconds = found === undefined ? Number.NaN : Number(found.slice(name.length + 1));
    return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
  };
  return { store: true, maxAgeMs: (age('s-maxage') ?? age('max-age') ?? 0) * 1000 };
}

/** A failed fetch as Cloudflare's remote-transformation errors. */
function remoteError(failure: FetchFailure): PictorError {
  switch (failure.kind) {
    case 'refused':
      return new PictorError(9401, 'The image origin resolves to an address that is not allowed', { status: 403 });
    case 'redirect-not-allowed':
      return new PictorError(9401, 'The image origin redirected to an origin that is not allowed', { status: 403 });
    case 'timeout':
      return new PictorError(9402, 'The image could not be fetched in time', { status: 502 });
    case 'network':
      return new PictorError(9402, `The image could not be fetched (${failure.detail})`, { status: 502 });
    case 'too-large':
      return new PictorError(9402, 'The image is too large to fetch', { status: 413 });
    case 'too-many-redirects':
      return new PictorError(9421);
    case 'status':
      if (failure.status === 404) return new PictorError(9404, 'The image origin answered 404');
      return new PictorError(9408, `The image origin answered HTTP ${failure.status}`);
  }
}

export class RemoteOrigins {
  private readonly allowed: Set<string>;
  private readonly memory: LRUCache<string, KeptSource>;
  private readonly inFlight = new Map<string, Promise<RemoteSource>>();

  constructor(
    private readonly fetcher: UrlFetcher,
    private readonly renders: RenderCacheStore,
    private readonly options: RemoteOriginsOptions,
  ) {
    this.allowed = new Set(options.origins);
    this.memory = new LRUCache<string, KeptSource>({ maxSize: Math.max(1, options.memoryBytes), sizeCalculation: (kept) => Math.max(1, kept.bytes.length) });
  }

  get enabled(): boolean {
    return this.allowed.size > 0;
  }

  /** What a source given as a path is relative to: the first allowed origin. */
  get defaultOrigin(): string | undefined {
    return this.options.origins[0];
  }

  /** The source URL, checked: absolute http(s) on an allowed origin (9406 / 9401). */
  checkedUrl(raw: string): URL {
    let url: URL;
    try {
      url = this.fetcher.parse(raw);
    } catch {
      throw new PictorError(9406, 'The image URL is not valid');
    }
    if (!this.allowed.has(url.origin)) throw new PictorError(9401, `The origin ${url.origin} is not allowed for transformations`, { status: 403 });
    return url;
  }

  async source(url: URL): Promise<RemoteSource> {
    const key = url.toString();
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const work = this.load(url).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    return work;
  }

  private cacheKey(url: URL): string {
    return createHash('sha256').update(`remote-source:v1:${url.toString()}`).digest('hex');
  }

  private async load(url: URL): Promise<RemoteSource> {
    const key = this.cacheKey(url);
    let kept = this.memory.get(key);
    if (!kept) {
      const stored = await this.renders.get(key).catch(() => undefined);
      kept = stored && decodeKept(stored);
    }
    const now = this.options.now();
    if (kept && now - kept.storedAt < kept.maxAgeMs) return { url: url.toString(), bytes: kept.bytes, sha256: kept.sha256, outcome: 'fresh' };

    // `Via: image-resizing` lets the origin (and a Pictor behind it) see a transformation's fetch: no loops.
    const headers: Record<string, string> = { 'user-agent': 'Pictor/1 (+image transformation)', accept: 'image/*', via: '1.1 pictor (image-resizing)' };
    if (kept?.etag) headers['if-none-match'] = kept.etag;
    if (kept?.lastModified) headers['if-modified-since'] = kept.lastModified;
    let answer;
    try {
      answer = await this.fetcher.exchange(url, { headers, followRedirectTo: (next) => this.allowed.has(next.origin) });
    } catch (error) {
      if (error instanceof FetchFailed) throw remoteError(error.failure);
      if (error instanceof PictorError && error.code === 5400) throw new PictorError(9420, 'The image origin redirected to an invalid URL', { status: 400 });
      throw error;
    }
    const fresh = freshness(header(answer.headers, 'cache-control'));
    if (answer.status === 304 && kept) {
      this.keep(key, { ...kept, storedAt: now, maxAgeMs: fresh.maxAgeMs }, fresh.store);
      return { url: url.toString(), bytes: kept.bytes, sha256: kept.sha256, outcome: 'revalidated' };
    }
    const bytes = answer.bytes;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const etag = header(answer.headers, 'etag');
    const lastModified = header(answer.headers, 'last-modified');
    this.keep(key, { bytes, sha256, storedAt: now, maxAgeMs: fresh.maxAgeMs, ...(etag && { etag }), ...(lastModified && { lastModified }) }, fresh.store);
    return { url: url.toString(), bytes, sha256, outcome: 'fetched' };
  }

  private keep(key: string, kept: KeptSource, store: boolean): void {
    if (!store) {
      this.memory.delete(key);
      return;
    }
    this.memory.set(key, kept);
    void this.renders.put(key, encodeKept(kept)).catch(() => undefined);
  }
}
