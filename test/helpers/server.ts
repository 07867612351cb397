/**
 * Starts the real Pictor server on an ephemeral port with a fresh temp data dir, a bootstrap account
 * and a read+write token. Tests drive it over HTTP like any client.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { type RunningServer, type ServerOptions, startServer } from '../../src/server.js';
import { META_ON_POSTGRES, createTestDatabase } from './postgres.js';
import { STORAGE_ON_S3, createTestBucket, s3Env } from './s3.js';

export const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/images');

export function fixture(name: string): Buffer {
  return fs.readFileSync(path.join(FIXTURES, name));
}

export interface TestServer {
  server: RunningServer;
  url: string;
  dataDir: string;
  accountId: string;
  token: string;
  /** `<url>/client/v4/accounts/<accountId>/images` */
  imagesUrl: string;
  /** Where this server keeps its data, as environment: for the CLI or a restart on the same stores. */
  storeEnv: Record<string, string>;
  auth: { authorization: string };
  stop(): Promise<void>;
}

let counter = 0;

/** One database per data dir in a PostgreSQL run; the throwaway cluster goes with its files afterwards. */
const databases = new Map<string, string>();
/** Likewise one bucket per data dir in an S3 run. */
const buckets = new Map<string, Record<string, string>>();

async function bucketFor(dataDir: string): Promise<Record<string, string>> {
  let env = buckets.get(dataDir);
  if (env === undefined) {
    env = s3Env(await createTestBucket());
    buckets.set(dataDir, env);
  }
  return env;
}

async function databaseFor(dataDir: string): Promise<string> {
  let url = databases.get(dataDir);
  if (url === undefined) {
    url = (await createTestDatabase()).url;
    databases.set(dataDir, url);
  }
  return url;
}

export function tempDir(prefix = 'pictor-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function randomAccountId(): string {
  counter += 1;
  return (Date.now().toString(16) + counter.toString(16).padStart(4, '0') + 'a'.repeat(32)).slice(0, 32);
}

export async function startTestServer(
  env: Record<string, string> = {},
  options: ServerOptions = {},
): Promise<TestServer> {
  const dataDir = env.PICTOR_DATA_DIR ?? tempDir();
  const accountId = env.PICTOR_BOOTSTRAP_ACCOUNT_ID ?? randomAccountId();
  const token = env.PICTOR_BOOTSTRAP_TOKEN ?? `test-token-${accountId}`;
  // In a PostgreSQL run every data dir gets a database of its own (a restart on the data dir finds it again).
  const databaseUrl = env.PICTOR_DATABASE_URL ?? (META_ON_POSTGRES ? await databaseFor(dataDir) : undefined);
  const storageEnv = env.PICTOR_STORAGE_URL === undefined && STORAGE_ON_S3 ? await bucketFor(dataDir) : {};
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    PICTOR_LOG_LEVEL: 'warn',
    PICTOR_BOOTSTRAP_ACCOUNT_ID: accountId,
    PICTOR_BOOTSTRAP_TOKEN: token,
    ...(databaseUrl !== undefined && { PICTOR_DATABASE_URL: databaseUrl }),
    ...storageEnv,
    ...env,
    PICTOR_DATA_DIR: dataDir,
  });
  const server = await startServer(config, options);
  return {
    server,
    url: server.url,
    dataDir,
    accountId,
    token,
    imagesUrl: `${server.url}/client/v4/accounts/${accountId}/images`,
    auth: { authorization: `Bearer ${token}` },
    storeEnv: { PICTOR_DATA_DIR: dataDir, ...(databaseUrl !== undefined && { PICTOR_DATABASE_URL: databaseUrl }), ...storageEnv },
    async stop() {
      await server.close();
    },
  };
}

/** Multipart upload with fetch + FormData, as a browser or script would send it. */
export async function upload(
  t: TestServer,
  fields: Record<string, string | Blob>,
  headers: Record<string, string> = t.auth,
): Promise<Response> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return fetch(`${t.imagesUrl}/v1`, { method: 'POST', body: form, headers });
}

/** A fixture as a named File part (its filename is the fixture's name). */
export function fileBlob(name: string, type = 'application/octet-stream'): File {
  return new File([fixture(name)], name, { type });
}

/** Starts a server for the enclosing describe block and stops it (and removes its data) afterwards. */
export function useServer(): { t: TestServer } {
  const holder = {} as { t: TestServer };
  beforeAll(async () => {
    holder.t = await startTestServer();
  });
  afterAll(async () => {
    await holder.t?.stop();
    if (holder.t) fs.rmSync(holder.t.dataDir, { recursive: true, force: true });
  });
  return holder;
}
