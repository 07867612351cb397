/**
 * Configuration validation (spec Part A, "Configuration") and the `pictor` CLI: account and token
 * management, and the first-run account + token printed once by `serve` on an empty data dir.
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { expectOk, type StatsResult } from './helpers/api.js';
import { cliOk, lastLine, runCli, type SpawnedServe, spawnServe } from './helpers/cli.js';
import { tempDir as makeTempDir } from './helpers/server.js';

const createdDirs: string[] = [];
function tempDir(): string {
  const dir = makeTempDir('pictor-cli-test-');
  createdDirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of createdDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

const ACCOUNT = '0123456789abcdef0123456789abcdef';

describe('loadConfig', () => {
  const invalid: Array<[string, Record<string, string>, string]> = [
    ['PORT=abc', { PORT: 'abc' }, 'PORT'],
    ['PORT=70000', { PORT: '70000' }, 'PORT'],
    ['PICTOR_ALLOW_PRIVATE_URLS=maybe', { PICTOR_ALLOW_PRIVATE_URLS: 'maybe' }, 'PICTOR_ALLOW_PRIVATE_URLS'],
    ['PICTOR_IMAGE_QUOTA=-1', { PICTOR_IMAGE_QUOTA: '-1' }, 'PICTOR_IMAGE_QUOTA'],
    ['PICTOR_IMAGE_QUOTA=ten', { PICTOR_IMAGE_QUOTA: 'ten' }, 'PICTOR_IMAGE_QUOTA'],
    ['PICTOR_IMAGE_QUOTA=1.5', { PICTOR_IMAGE_QUOTA: '1.5' }, 'PICTOR_IMAGE_QUOTA'],
    ['PICTOR_URL_FETCH_TIMEOUT_MS=soon', { PICTOR_URL_FETCH_TIMEOUT_MS: 'soon' }, 'PICTOR_URL_FETCH_TIMEOUT_MS'],
    ['PICTOR_SHUTDOWN_TIMEOUT=soon', { PICTOR_SHUTDOWN_TIMEOUT: 'soon' }, 'PICTOR_SHUTDOWN_TIMEOUT'],
    ['PICTOR_SHUTDOWN_TIMEOUT=-1', { PICTOR_SHUTDOWN_TIMEOUT: '-1' }, 'PICTOR_SHUTDOWN_TIMEOUT'],
    ['PICTOR_SHUTDOWN_TIMEOUT=2.5', { PICTOR_SHUTDOWN_TIMEOUT: '2.5' }, 'PICTOR_SHUTDOWN_TIMEOUT'],
    ['PICTOR_SHUTDOWN_TIMEOUT=3601', { PICTOR_SHUTDOWN_TIMEOUT: '3601' }, 'PICTOR_SHUTDOWN_TIMEOUT'],
    ['PORT=80x', { PORT: '80x' }, 'PORT'],
    [
      'PICTOR_BOOTSTRAP_ACCOUNT_ID without a token',
      { PICTOR_BOOTSTRAP_ACCOUNT_ID: ACCOUNT },
      'PICTOR_BOOTSTRAP_TOKEN',
    ],
    ['PICTOR_BOOTSTRAP_TOKEN without an account', { PICTOR_BOOTSTRAP_TOKEN: 'tok' }, 'PICTOR_BOOTSTRAP_ACCOUNT_ID'],
    ['PICTOR_DATABASE_URL not a URL', { PICTOR_DATABASE_URL: 'not a url' }, 'PICTOR_DATABASE_URL'],
    ['PICTOR_DATABASE_URL of another kind', { PICTOR_DATABASE_URL: 'mysql://h/db' }, 'PICTOR_DATABASE_URL'],
    ['PICTOR_DATABASE_POOL=0', { PICTOR_DATABASE_URL: 'postgres://h/db', PICTOR_DATABASE_POOL: '0' }, 'PICTOR_DATABASE_POOL'],
    ['PICTOR_MIGRATE=sometimes', { PICTOR_DATABASE_URL: 'postgres://h/db', PICTOR_MIGRATE: 'sometimes' }, 'PICTOR_MIGRATE'],
    ['PICTOR_STORAGE_URL not s3://', { PICTOR_STORAGE_URL: 'https://bucket.example/x' }, 'PICTOR_STORAGE_URL'],
    ['PICTOR_STORAGE_URL with a bad bucket name', { PICTOR_STORAGE_URL: 's3://Bad_Bucket' }, 'PICTOR_STORAGE_URL'],
    ['AWS_ACCESS_KEY_ID without its secret', { PICTOR_STORAGE_URL: 's3://bucket', AWS_ACCESS_KEY_ID: 'k' }, 'AWS_SECRET_ACCESS_KEY'],
    ['AWS_ENDPOINT_URL_S3 not a URL', { PICTOR_STORAGE_URL: 's3://bucket', AWS_ENDPOINT_URL_S3: 'localhost:9000' }, 'AWS_ENDPOINT_URL_S3'],
    [
      'an upper-case bootstrap account id',
      { PICTOR_BOOTSTRAP_ACCOUNT_ID: ACCOUNT.toUpperCase(), PICTOR_BOOTSTRAP_TOKEN: 'tok' },
      'PICTOR_BOOTSTRAP_ACCOUNT_ID',
    ],
    [
      'a 31-character bootstrap account id',
      { PICTOR_BOOTSTRAP_ACCOUNT_ID: ACCOUNT.slice(1), PICTOR_BOOTSTRAP_TOKEN: 'tok' },
      'PICTOR_BOOTSTRAP_ACCOUNT_ID',
    ],
    [
      'a non-hex bootstrap account id',
      { PICTOR_BOOTSTRAP_ACCOUNT_ID: 'g'.repeat(32), PICTOR_BOOTSTRAP_TOKEN: 'tok' },
      'PICTOR_BOOTSTRAP_ACCOUNT_ID',
    ],
  ];

  it.each(invalid)('%s → ConfigError naming the variable', (_label, env, variable) => {
    const error = configError(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
  });

  const booleans: Array<[string, boolean]> = [
    ['true', true],
    ['TRUE', true],
    ['True', true],
    ['1', true],
    ['yes', true],
    ['YES', true],
    ['yEs', true],
    ['false', false],
    ['FALSE', false],
    ['False', false],
    ['0', false],
    ['no', false],
    ['NO', false],
    ['No', false],
  ];
  it.each(booleans)('PICTOR_ALLOW_PRIVATE_URLS=%s → %s', (raw, expected) => {
    expect(loadConfig({ PICTOR_ALLOW_PRIVATE_URLS: raw }).allowPrivateUrls).toBe(expected);
  });

  it.each(['on', 'off', 'y', 'n', '2', 'truee', 'enabled'])('PICTOR_ALLOW_PRIVATE_URLS=%s is refused', (raw) => {
    expect(configError({ PICTOR_ALLOW_PRIVATE_URLS: raw }).variable).toBe('PICTOR_ALLOW_PRIVATE_URLS');
  });

  it('valid values are read (control)', () => {
    const config = loadConfig({
      PORT: '0',
      PICTOR_IMAGE_QUOTA: '0',
      PICTOR_BOOTSTRAP_ACCOUNT_ID: ACCOUNT,
      PICTOR_BOOTSTRAP_TOKEN: 'tok-1',
    });
    expect(config.port).toBe(0);
    expect(config.imageQuota).toBe(0);
    expect(config.allowPrivateUrls).toBe(false);
    expect(config.bootstrap).toEqual({ accountId: ACCOUNT, token: 'tok-1' });
  });

  it('PICTOR_SHUTDOWN_TIMEOUT: 25 s by default, 0 (no wait) and whole seconds accepted', () => {
    expect(loadConfig({}).shutdownTimeoutSeconds).toBe(25);
    expect(loadConfig({ PICTOR_SHUTDOWN_TIMEOUT: '0' }).shutdownTimeoutSeconds).toBe(0);
    expect(loadConfig({ PICTOR_SHUTDOWN_TIMEOUT: '90' }).shutdownTimeoutSeconds).toBe(90);
  });
});

describe('serve with a bad configuration', () => {
  it('PORT=abc exits non-zero with a message naming PORT', async () => {
    const result = await runCli(['serve'], { PORT: 'abc', PICTOR_DATA_DIR: tempDir() });
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr + result.stdout).toMatch(/\bPORT\b/);
  });

  it('PICTOR_ALLOW_PRIVATE_URLS=maybe exits non-zero naming the variable', async () => {
    const result = await runCli(['serve'], { PORT: '0', PICTOR_ALLOW_PRIVATE_URLS: 'maybe', PICTOR_DATA_DIR: tempDir() });
    expect(result.code).not.toBe(0);
    expect(result.stderr + result.stdout).toContain('PICTOR_ALLOW_PRIVATE_URLS');
  });
});

describe('account and token commands', () => {
  const env = { PICTOR_DATA_DIR: tempDir(), PICTOR_LOG_LEVEL: 'warn' };
  const id = 'abcdef0123456789abcdef0123456789';

  it('account create --id, account list, token create, token list', async () => {
    const created = await cliOk(['account', 'create', '--id', id], env);
    expect(created.stdout).toContain(id);

    const listed = await cliOk(['account', 'list'], env);
    expect(listed.stdout).toContain(id);

    const issued = await cliOk(['token', 'create', '--account', id, '--name', 'ci'], env);
    const secret = lastLine(issued.stdout);
    // Alone on its last line: nothing but the token.
    expect(secret).toMatch(/^[\x21-\x7e]{20,512}$/);
    expect(issued.stdout.trimEnd().split('\n').pop()).toBe(secret);

    const tokens = await cliOk(['token', 'list'], env);
    expect(tokens.stdout).toContain(id);
    expect(tokens.stdout).toContain('"ci"');
    expect(tokens.stdout).not.toContain(secret);
    const own = await cliOk(['token', 'list', '--account', id], env);
    expect(own.stdout).not.toContain(secret);
  });

  it('a duplicate or malformed account id is refused with a non-zero exit', async () => {
    expect((await runCli(['account', 'create', '--id', id], env)).code).not.toBe(0);
    expect((await runCli(['account', 'create', '--id', 'NOT-HEX'], env)).code).not.toBe(0);
    const listed = await cliOk(['account', 'list'], env);
    expect(listed.stdout).not.toContain('NOT-HEX');
    expect(listed.stdout.split('\n').filter((line) => line.includes(id))).toHaveLength(1);
  });

  it('token create for an unknown account, an unknown permission, or revoking an unknown id exits non-zero', async () => {
    const before = (await cliOk(['token', 'list'], env)).stdout;
    expect((await runCli(['token', 'create', '--account', 'f'.repeat(32)], env)).code).not.toBe(0);
    expect((await runCli(['token', 'create', '--account', id, '--permission', 'images:admin'], env)).code).not.toBe(0);
    expect((await runCli(['token', 'revoke', 'no-such-id'], env)).code).not.toBe(0);
    expect((await cliOk(['token', 'list'], env)).stdout).toBe(before);
  });
});

describe('first start on an empty data dir', () => {
  const dataDir = tempDir();
  const env = { PICTOR_DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: '0', PICTOR_LOG_LEVEL: 'info' };
  const started: SpawnedServe[] = [];
  let firstToken = '';
  let firstAccount = '';

  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  async function statsStatus(apiBase: string, accountId: string, token: string): Promise<Response> {
    return fetch(`${apiBase}/accounts/${accountId}/images/v1/stats`, { headers: { authorization: `Bearer ${token}` } });
  }

  it('prints an account id and a token once; the token works against the printed API base', async () => {
    const serve = spawnServe(env);
    started.push(serve);
    const [, apiBase = ''] = await serve.waitFor(/API base:\s+(\S+)/);
    const out = serve.stdout();
    firstAccount = /account id:\s+([0-9a-f]{32})/.exec(out)?.[1] ?? '';
    firstToken = /API token:\s+(\S+)/.exec(out)?.[1] ?? '';
    expect(firstAccount).toMatch(/^[0-9a-f]{32}$/);
    expect(firstToken).not.toBe('');
    expect(out.match(/API token:/g)).toHaveLength(1);
    expect(apiBase).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/client\/v4$/);
    expect(apiBase).not.toMatch(/:0\//);

    const stats = await expectOk<StatsResult>(await statsStatus(apiBase, firstAccount, firstToken));
    expect(stats.count.current).toBe(0);

    // A token made by the CLI on the same data dir works on this running server too.
    const cliToken = lastLine((await cliOk(['token', 'create', '--account', firstAccount], env)).stdout);
    expect((await statsStatus(apiBase, firstAccount, cliToken)).status).toBe(200);
    // Neither secret is ever listed.
    const tokens = (await cliOk(['token', 'list'], env)).stdout;
    expect(tokens).not.toContain(firstToken);
    expect(tokens).not.toContain(cliToken);

    await serve.stop();
  });

  it('a second start on the same dir prints no token and keeps the first one working', async () => {
    expect(firstToken).not.toBe('');
    const serve = spawnServe(env);
    started.push(serve);
    const [, url = ''] = await serve.waitFor(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/);
    const res = await statsStatus(`${url}/client/v4`, firstAccount, firstToken);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    // Give any first-run banner time to be written, then make sure there is none.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(serve.stdout()).not.toMatch(/API token/);
    expect(serve.stdout()).not.toContain(firstToken);
    await serve.stop();
    expect(await serve.exited).toBe(0);
  });
});
