/**
 * The one place that reads the environment. `loadConfig` is called once by the composition root
 * (server or CLI); everything else receives the typed `Config` value.
 */
import os from 'node:os';
import path from 'node:path';
import type { SvgLimits } from './imaging/svg.js';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /**
   * Base URL for delivery and upload URLs in responses, without a trailing slash.
   * Undefined means "http://HOST:PORT as actually bound" (PORT=0 binds an ephemeral port).
   */
  publicUrl: string | undefined;
  bootstrap: { accountId: string; token: string } | undefined;
  allowPrivateUrls: boolean;
  /** Serve the web dashboard at /dashboard (PICTOR_DASHBOARD, default true). */
  dashboard: boolean;
  /** The batch host (Cloudflare's Images batch API). */
  batch: BatchSettings;
  /** Origins remote transformations may fetch from (PICTOR_REMOTE_ORIGINS); empty = off. */
  remoteOrigins: string[];
  imageQuota: number;
  logLevel: string;
  limits: UploadLimits;
  urlFetch: UrlFetchSettings;
  rendering: RenderSettings;
  transport: TransportSettings;
  svg: SvgLimits;
  /** Uploads being received or checked at once on this server; more wait, then get 503. */
  maxUploadsInProgress: number;
  /** How long an upload over that bound waits for a place before 503. */
  uploadQueueWaitMs: number;
  /** PostgreSQL for metadata (`PICTOR_DATABASE_URL`); undefined = SQLite in the data dir. */
  database: DatabaseSettings | undefined;
  /** S3 for originals and renders (`PICTOR_STORAGE_URL`); undefined = local disk in the data dir. */
  storage: StorageSettings | undefined;
  /** Originals younger than this are never taken for orphans (an upload may be in flight on another node). */
  orphanGraceSeconds: number;
  /**
   * On SIGTERM/SIGINT, how long requests in progress may take to finish before their connections are
   * closed (`PICTOR_SHUTDOWN_TIMEOUT`, seconds). Below Kubernetes' default 30 s grace period by default,
   * so the stores are closed before the orchestrator's SIGKILL.
   */
  shutdownTimeoutSeconds: number;
  /** When set (`PICTOR_METRICS_TOKEN`), `GET /metrics` requires `Authorization: Bearer <this>`. */
  metricsToken: string | undefined;
  /** Webhooks for direct uploads: sending and retrying. */
  webhooks: WebhookSettings;
}

export interface WebhookSettings {
  /** One POST's time limit (PICTOR_WEBHOOK_TIMEOUT_MS). */
  timeoutMs: number;
  /** How often each node looks for due deliveries (PICTOR_WEBHOOK_POLL_MS). */
  pollMs: number;
  /** First retry delay, doubled each time (PICTOR_WEBHOOK_RETRY_BASE_MS) up to PICTOR_WEBHOOK_RETRY_MAX_MS. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** How long after the event it is still retried (PICTOR_WEBHOOK_RETRY_WINDOW_SECONDS, default 24 h). */
  retryWindowSeconds: number;
}

/** Originals and renders in an S3-compatible bucket (`PICTOR_STORAGE_URL=s3://bucket/prefix`). */
export interface StorageSettings {
  bucket: string;
  /** Key prefix, empty or ending in `/`. */
  prefix: string;
  /** AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL): a self-hosted engine, addressed path-style. */
  endpoint: string | undefined;
  region: string;
  /** From AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; otherwise the SDK's default chain (roles, profiles). */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  /** Renders older than this are deleted by the sweep (a shared bucket cannot be bounded by one node's LRU). */
  renderTtlSeconds: number;
}

export interface DatabaseSettings {
  url: string;
  poolSize: number;
  /** Run pending migrations at start (`PICTOR_MIGRATE=auto`, the default) or leave that to `pictor migrate`. */
  migrate: boolean;
}

/** Connection-level limits (see http/transport.ts). */
export interface TransportSettings {
  headersTimeoutMs: number;
  /** Longest time to receive a whole request, whatever its rate. */
  requestTimeoutMs: number;
  /** A socket with no traffic at all for this long is closed. */
  idleTimeoutMs: number;
  bodyMinBytesPerSecond: number;
  bodyRateWindowMs: number;
  /** After an early answer, how long and how much of the rest of the body is drained before closing. */
  lingerMs: number;
  lingerMaxBytes: number;
}

export interface RenderSettings {
  /** Renders running at once (default: the number of cores). */
  concurrency: number;
  /** Renders waiting for a slot before new ones get 503. */
  maxQueue: number;
  /** Pixels (decoded + produced) from which a render is heavy. */
  heavyPixels: number;
  /** Heavy renders running at once (default: one less than `concurrency`, at least 1). */
  heavyConcurrency: number;
  /** Heavy renders waiting for a slot. */
  maxHeavyQueue: number;
  /** Longest wait for a render slot before 503. */
  maxWaitMs: number;
  /** A render (or an upload check) still running after this is stopped. */
  timeoutSeconds: number;
  /** Largest output a flexible variant may ask for, in pixels. */
  maxFlexiblePixels: number;
  /** libvips threads per pipeline: 1 keeps one render to one core, so a heavy one cannot starve the rest. */
  vipsThreads: number;
  /** Worker threads parsing and sanitising SVGs (each may hold a few hundred MB for a 10 MB document). */
  svgThreads: number;
  /** Size bound of the on-disk render cache. */
  cacheMaxBytes: number;
  /** Size bound of the in-memory render cache. */
  memoryCacheBytes: number;
}

export interface UploadLimits {
  /** Maximum bytes of one uploaded file (Cloudflare: 10 MB). */
  maxUploadBytes: number;
  maxSidePixels: number;
  maxFramePixels: number;
  maxAnimatedPixels: number;
  maxMetadataBytes: number;
}

export interface UrlFetchSettings {
  timeoutMs: number;
  maxRedirects: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = 'ConfigError';
  }
}

export const DEFAULT_LIMITS: UploadLimits = {
  maxUploadBytes: 10 * 1024 * 1024,
  maxSidePixels: 12_000,
  maxFramePixels: 100_000_000,
  maxAnimatedPixels: 100_000_000,
  maxMetadataBytes: 1024,
};

type Env = Record<string, string | undefined>;

function readString(env: Env, name: string, fallback: string): string {
  const value = env[name];
  return value === undefined || value === '' ? fallback : value;
}

function readInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw.trim());
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function parseBoolean(name: string, raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(value)) return true;
  if (['false', '0', 'no'].includes(value)) return false;
  throw new ConfigError(name, `must be one of true, false, 1, 0, yes, no; got "${raw}"`);
}

function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  return raw === undefined || raw === '' ? fallback : parseBoolean(name, raw);
}

export function defaultPublicUrl(host: string, port: number): string {
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return `http://${shownHost}:${port}`;
}

function readPublicUrl(env: Env): string | undefined {
  const raw = env.PICTOR_PUBLIC_URL;
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('PICTOR_PUBLIC_URL', `must be an absolute http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('PICTOR_PUBLIC_URL', `must use http or https, got "${raw}"`);
  }
  return url.toString().replace(/\/+$/, '');
}

export interface BatchSettings {
  /** Where this server mounts the batch routes: the path of PICTOR_BATCH_URL (default `/batch`). */
  prefix: string;
  tokenTtlSeconds: number;
  ratePerSecond: number;
}

/**
 * PICTOR_BATCH_URL: the batch host's base as clients reach it. A full URL (a separate host name behind a
 * proxy that forwards to this server's same path) or a path; this server serves the batch routes under
 * its path, which must not be `/` (delivery owns the root).
 */
function readBatch(env: Env): BatchSettings {
  const raw = env.PICTOR_BATCH_URL ?? '/batch';
  let prefix: string;
  try {
    prefix = new URL(raw, 'http://localhost').pathname.replace(/\/+$/, '');
  } catch {
    throw new ConfigError('PICTOR_BATCH_URL', `must be a URL or a path, got "${raw}"`);
  }
  if (!/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(prefix) || prefix === '/client' || prefix.startsWith('/client/') || prefix === '/dashboard' || prefix === '/upload') {
    throw new ConfigError('PICTOR_BATCH_URL', `needs a path of its own (such as /batch), got "${raw}"`);
  }
  return {
    prefix,
    tokenTtlSeconds: readInteger(env, 'PICTOR_BATCH_TOKEN_TTL', 3600, 60, 86_400),
    ratePerSecond: readInteger(env, 'PICTOR_BATCH_RATE', 200, 1, 1_000_000),
  };
}

/** PICTOR_REMOTE_ORIGINS: comma-separated http(s) origins (`https://images.example.com`), kept as origins. */
function readRemoteOrigins(env: Env): string[] {
  const raw = env.PICTOR_REMOTE_ORIGINS ?? '';
  return raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      let url: URL;
      try {
        url = new URL(part);
      } catch {
        throw new ConfigError('PICTOR_REMOTE_ORIGINS', `must list http(s) origins, got "${part}"`);
      }
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search !== '' || url.username !== '') {
        throw new ConfigError('PICTOR_REMOTE_ORIGINS', `must list origins (scheme, host and port only), got "${part}"`);
      }
      return url.origin;
    });
}

export const ACCOUNT_ID_PATTERN = /^[0-9a-f]{32}$/;
export const TOKEN_PATTERN = /^[\x21-\x7e]{1,512}$/;

function readBootstrap(env: Env): Config['bootstrap'] {
  const accountId = env.PICTOR_BOOTSTRAP_ACCOUNT_ID;
  const token = env.PICTOR_BOOTSTRAP_TOKEN;
  const hasAccount = accountId !== undefined && accountId !== '';
  const hasToken = token !== undefined && token !== '';
  if (!hasAccount && !hasToken) return undefined;
  if (!hasAccount) throw new ConfigError('PICTOR_BOOTSTRAP_ACCOUNT_ID', 'must be set when PICTOR_BOOTSTRAP_TOKEN is');
  if (!hasToken) throw new ConfigError('PICTOR_BOOTSTRAP_TOKEN', 'must be set when PICTOR_BOOTSTRAP_ACCOUNT_ID is');
  if (!ACCOUNT_ID_PATTERN.test(accountId)) {
    throw new ConfigError('PICTOR_BOOTSTRAP_ACCOUNT_ID', 'must be 32 lowercase hexadecimal characters');
  }
  if (!TOKEN_PATTERN.test(token)) {
    throw new ConfigError('PICTOR_BOOTSTRAP_TOKEN', 'must be 1-512 visible ASCII characters without spaces');
  }
  return { accountId, token };
}

function readMetricsToken(env: Env): string | undefined {
  const token = env.PICTOR_METRICS_TOKEN;
  if (token === undefined || token === '') return undefined;
  if (!TOKEN_PATTERN.test(token)) throw new ConfigError('PICTOR_METRICS_TOKEN', 'must be 1-512 visible ASCII characters without spaces');
  return token;
}

/** The URL without its password, for messages. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable)';
  }
}

function readDatabase(env: Env): DatabaseSettings | undefined {
  const raw = env.PICTOR_DATABASE_URL;
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('PICTOR_DATABASE_URL', 'must be a postgres:// URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError('PICTOR_DATABASE_URL', `must be a postgres:// URL, got ${url.protocol}//…`);
  }
  const migrate = readString(env, 'PICTOR_MIGRATE', 'auto');
  if (migrate !== 'auto' && migrate !== 'off') throw new ConfigError('PICTOR_MIGRATE', `must be auto or off, got "${migrate}"`);
  return { url: raw, poolSize: readInteger(env, 'PICTOR_DATABASE_POOL', 10, 1, 1000), migrate: migrate === 'auto' };
}

function readStorage(env: Env): StorageSettings | undefined {
  const raw = env.PICTOR_STORAGE_URL;
  if (raw === undefined || raw === '') return undefined;
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(raw);
  if (!match?.[1]) throw new ConfigError('PICTOR_STORAGE_URL', `must be s3://bucket or s3://bucket/prefix, got "${raw}"`);
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new ConfigError('AWS_ENDPOINT_URL_S3', `must be an http(s) URL, got "${endpoint}"`);
  }
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new ConfigError(accessKeyId === undefined ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY', 'must be set together with its pair');
  }
  return {
    bucket: match[1],
    prefix: prefix === '' ? '' : `${prefix}/`,
    endpoint,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    credentials:
      accessKeyId !== undefined && secretAccessKey !== undefined
        ? { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN && { sessionToken: env.AWS_SESSION_TOKEN }) }
        : undefined,
    renderTtlSeconds: readInteger(env, 'PICTOR_RENDER_TTL', 30 * 86_400, 60, 10 * 365 * 86_400),
  };
}

function readTransport(env: Env): TransportSettings {
  const settings: TransportSettings = {
    headersTimeoutMs: readInteger(env, 'PICTOR_HEADERS_TIMEOUT_MS', 20_000, 1000, 3_600_000),
    requestTimeoutMs: readInteger(env, 'PICTOR_REQUEST_TIMEOUT_MS', 300_000, 1000, 86_400_000),
    idleTimeoutMs: readInteger(env, 'PICTOR_IDLE_TIMEOUT_MS', 120_000, 1000, 86_400_000),
    bodyMinBytesPerSecond: readInteger(env, 'PICTOR_BODY_MIN_BYTES_PER_SECOND', 4096, 0, 1024 ** 3),
    bodyRateWindowMs: readInteger(env, 'PICTOR_BODY_RATE_WINDOW_MS', 20_000, 100, 3_600_000),
    lingerMs: readInteger(env, 'PICTOR_LINGER_MS', 5000, 0, 600_000),
    lingerMaxBytes: readInteger(env, 'PICTOR_LINGER_MAX_BYTES', 12 * 1024 ** 2, 0, Number.MAX_SAFE_INTEGER),
  };
  // Node refuses a headers timeout longer than the request timeout.
  if (settings.headersTimeoutMs > settings.requestTimeoutMs) {
    throw new ConfigError('PICTOR_HEADERS_TIMEOUT_MS', `must not exceed PICTOR_REQUEST_TIMEOUT_MS (${settings.requestTimeoutMs})`);
  }
  return settings;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): Config {
  const host = readString(env, 'HOST', '127.0.0.1');
  const port = readInteger(env, 'PORT', 8080, 0, 65535);
  const logLevel = readString(env, 'PICTOR_LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('PICTOR_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}; got "${logLevel}"`);
  }
  const concurrency = readInteger(env, 'PICTOR_RENDER_CONCURRENCY', os.availableParallelism(), 1, 256);
  return {
    host,
    port,
    dataDir: path.resolve(readString(env, 'PICTOR_DATA_DIR', './data')),
    publicUrl: readPublicUrl(env),
    bootstrap: readBootstrap(env),
    allowPrivateUrls: readBoolean(env, 'PICTOR_ALLOW_PRIVATE_URLS', false),
    dashboard: readBoolean(env, 'PICTOR_DASHBOARD', true),
    batch: readBatch(env),
    remoteOrigins: readRemoteOrigins(env),
    imageQuota: readInteger(env, 'PICTOR_IMAGE_QUOTA', 100_000, 0, Number.MAX_SAFE_INTEGER),
    logLevel,
    limits: DEFAULT_LIMITS,
    urlFetch: {
      timeoutMs: readInteger(env, 'PICTOR_URL_FETCH_TIMEOUT_MS', 15_000, 100, 600_000),
      maxRedirects: 3,
    },
    rendering: {
      concurrency,
      maxQueue: readInteger(env, 'PICTOR_RENDER_QUEUE', 64, 0, 100_000),
      heavyPixels: readInteger(env, 'PICTOR_RENDER_HEAVY_PIXELS', 24_000_000, 1, Number.MAX_SAFE_INTEGER),
      heavyConcurrency: readInteger(env, 'PICTOR_RENDER_HEAVY_CONCURRENCY', Math.max(1, concurrency - 1), 1, concurrency),
      maxHeavyQueue: readInteger(env, 'PICTOR_RENDER_HEAVY_QUEUE', 2, 0, 100_000),
      maxWaitMs: readInteger(env, 'PICTOR_RENDER_QUEUE_WAIT_MS', 10_000, 1, 600_000),
      timeoutSeconds: readInteger(env, 'PICTOR_RENDER_TIMEOUT_SECONDS', 20, 1, 600),
      maxFlexiblePixels: readInteger(env, 'PICTOR_FLEXIBLE_MAX_PIXELS', 50_000_000, 1, 144_000_000),
      vipsThreads: readInteger(env, 'PICTOR_VIPS_THREADS', 1, 1, 256),
      svgThreads: readInteger(env, 'PICTOR_SVG_THREADS', 1, 1, 64),
      cacheMaxBytes: readInteger(env, 'PICTOR_CACHE_MAX_BYTES', 1024 ** 3, 0, Number.MAX_SAFE_INTEGER),
      memoryCacheBytes: readInteger(env, 'PICTOR_MEMORY_CACHE_BYTES', 64 * 1024 ** 2, 0, Number.MAX_SAFE_INTEGER),
    },
    transport: readTransport(env),
    svg: {
      maxElements: readInteger(env, 'PICTOR_SVG_MAX_ELEMENTS', 250_000, 1, 10_000_000),
      maxDepth: readInteger(env, 'PICTOR_SVG_MAX_DEPTH', 256, 1, 100_000),
      maxPathCoordinates: readInteger(env, 'PICTOR_SVG_MAX_PATH_COORDINATES', 2_500_000, 1, 100_000_000),
    },
    maxUploadsInProgress: readInteger(env, 'PICTOR_MAX_UPLOADS_IN_PROGRESS', 32, 1, 100_000),
    uploadQueueWaitMs: readInteger(env, 'PICTOR_UPLOAD_QUEUE_WAIT_MS', 15_000, 1, 600_000),
    database: readDatabase(env),
    storage: readStorage(env),
    orphanGraceSeconds: readInteger(env, 'PICTOR_GC_GRACE_SECONDS', 3600, 60, 30 * 86_400),
    shutdownTimeoutSeconds: readInteger(env, 'PICTOR_SHUTDOWN_TIMEOUT', 25, 0, 3600),
    metricsToken: readMetricsToken(env),
    webhooks: {
      timeoutMs: readInteger(env, 'PICTOR_WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
      pollMs: readInteger(env, 'PICTOR_WEBHOOK_POLL_MS', 1000, 10, 600_000),
      retryBaseMs: readInteger(env, 'PICTOR_WEBHOOK_RETRY_BASE_MS', 5000, 10, 3_600_000),
      retryMaxMs: readInteger(env, 'PICTOR_WEBHOOK_RETRY_MAX_MS', 3_600_000, 10, 86_400_000),
      retryWindowSeconds: readInteger(env, 'PICTOR_WEBHOOK_RETRY_WINDOW_SECONDS', 86_400, 1, 30 * 86_400),
    },
  };
}
