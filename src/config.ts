/**
 * The one place that reads the environment. `loadConfig` is called once by the composition root
 * (server or CLI); everything else receives the typed `Config` value.
 */
import os from 'node:os';
import path from 'node:path';

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
  imageQuota: number;
  logLevel: string;
  limits: UploadLimits;
  urlFetch: UrlFetchSettings;
  rendering: RenderSettings;
}

export interface RenderSettings {
  /** Renders running at once (default: the number of cores). */
  concurrency: number;
  /** Renders waiting for a slot before new ones get 503. */
  maxQueue: number;
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

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): Config {
  const host = readString(env, 'HOST', '127.0.0.1');
  const port = readInteger(env, 'PORT', 8080, 0, 65535);
  const logLevel = readString(env, 'PICTOR_LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('PICTOR_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}; got "${logLevel}"`);
  }
  return {
    host,
    port,
    dataDir: path.resolve(readString(env, 'PICTOR_DATA_DIR', './data')),
    publicUrl: readPublicUrl(env),
    bootstrap: readBootstrap(env),
    allowPrivateUrls: readBoolean(env, 'PICTOR_ALLOW_PRIVATE_URLS', false),
    imageQuota: readInteger(env, 'PICTOR_IMAGE_QUOTA', 100_000, 0, Number.MAX_SAFE_INTEGER),
    logLevel,
    limits: DEFAULT_LIMITS,
    urlFetch: {
      timeoutMs: readInteger(env, 'PICTOR_URL_FETCH_TIMEOUT_MS', 15_000, 100, 600_000),
      maxRedirects: 3,
    },
    rendering: {
      concurrency: readInteger(env, 'PICTOR_RENDER_CONCURRENCY', os.availableParallelism(), 1, 256),
      maxQueue: readInteger(env, 'PICTOR_RENDER_QUEUE', 32, 0, 100_000),
      cacheMaxBytes: readInteger(env, 'PICTOR_CACHE_MAX_BYTES', 1024 ** 3, 0, Number.MAX_SAFE_INTEGER),
      memoryCacheBytes: readInteger(env, 'PICTOR_MEMORY_CACHE_BYTES', 64 * 1024 ** 2, 0, Number.MAX_SAFE_INTEGER),
    },
  };
}
