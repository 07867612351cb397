/**
 * `pictor migrate-storage`: an embedded install (SQLite + disk) copied into PostgreSQL + S3, then served
 * from there with the same ids, bytes, credentials, variants and keys; run twice (resumable); the
 * source untouched. Runs in the `s3` project only.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startReceiver } from './helpers/webhook-receiver.js';
import { loadConfig } from '../src/config.js';
import { type RunningServer, startServer } from '../src/server.js';
import { expectOk, type ImageResult } from './helpers/api.js';
import { cliOk, runCli } from './helpers/cli.js';
import { createTestDatabase } from './helpers/postgres.js';
import { createTestBucket, s3Env } from './helpers/s3.js';
import { fixture, randomAccountId, tempDir } from './helpers/server.js';

/** sha256 of every file under `dir`, by relative path: what "untouched" means. */
function fingerprint(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  const walk = (current: string): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else result[path.relative(dir, full)] = createHash('sha256').update(fs.readFileSync(full)).digest('hex');
    }
  };
  walk(dir);
  return result;
}

async function start(env: Record<string, string>): Promise<RunningServer> {
  return startServer(loadConfig({ HOST: '127.0.0.1', PORT: '0', PICTOR_LOG_LEVEL: 'warn', ...env }));
}

describe('pictor migrate-storage', () => {
  it('copies an embedded install into PostgreSQL + S3, verified, resumable, the source untouched', async () => {
    const source = tempDir();
    const accountId = randomAccountId();
    const token = `token-${accountId}`;
    const auth = { authorization: `Bearer ${token}` };
    const embedded = await start({ PICTOR_DATA_DIR: source, PICTOR_BOOTSTRAP_ACCOUNT_ID: accountId, PICTOR_BOOTSTRAP_TOKEN: token, PICTOR_ALLOW_PRIVATE_URLS: 'true' });
    const api = `${embedded.url}/client/v4/accounts/${accountId}/images`;
    const uploaded: Array<{ id: string; name: string }> = [];
    for (const [name, id] of [['320x240.jpg', undefined], ['with-alpha.png', 'brand/logo'], ['check.svg', undefined]] as const) {
      const form = new FormData();
      form.append('file', new File([fixture(name)], name));
      form.append('metadata', JSON.stringify({ name }));
      if (id) form.append('id', id);
      const image = await expectOk<ImageResult>(await fetch(`${api}/v1`, { method: 'POST', headers: auth, body: form }));
      uploaded.push({ id: image.id, name });
    }
    await expectOk(await fetch(`${api}/v1/variants`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ id: 'thumb', options: { width: 64 } }) }));
    const keys = await expectOk<{ keys: Array<{ name: string; value: string }> }>(await fetch(`${api}/v1/keys/second`, { method: 'PUT', headers: auth }));
    const alerting = `${embedded.url}/client/v4/accounts/${accountId}/alerting/v3`;
    const json = { ...auth, 'content-type': 'application/json' };
    const receiver = await startReceiver();
    const hook = await expectOk<{ id: string }>(
      await fetch(`${alerting}/destinations/webhooks`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'uploads', url: receiver.url, secret: 'x' }) }),
    );
    await receiver.close();
    const policy = await expectOk<{ id: string }>(
      await fetch(`${alerting}/policies`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ name: 'uploads', alert_type: 'image_notification', enabled: true, mechanisms: { webhooks: [{ id: hook.id }] } }),
      }),
    );
    await embedded.close();
    const before = fingerprint(source);

    const database = await createTestDatabase();
    const target = { PICTOR_DATABASE_URL: database.url, ...s3Env(await createTestBucket()), PICTOR_DATA_DIR: tempDir(), PICTOR_LOG_LEVEL: 'warn' };
    const first = await cliOk(['migrate-storage', '--from', source], target);
    expect(first.stdout).toMatch(/copied 3 image\(s\), 0 already there/);
    const second = await cliOk(['migrate-storage', '--from', source], target);
    expect(second.stdout).toMatch(/copied 0 image\(s\), 3 already there/);
    expect(fingerprint(source)).toEqual(before);

    const scaled = await start(target);
    try {
      const scaledApi = `${scaled.url}/client/v4/accounts/${accountId}/images`;
      for (const { id, name } of uploaded) {
        const image = await expectOk<ImageResult>(await fetch(`${scaledApi}/v1/${encodeURIComponent(id)}`, { headers: auth }));
        expect(image.meta).toEqual({ name });
        const blob = await fetch(`${scaledApi}/v1/${encodeURIComponent(id)}/blob`, { headers: auth });
        expect(Buffer.from(await blob.arrayBuffer()).equals(fixture(name))).toBe(true);
      }
      const variants = await expectOk<{ variants: Record<string, unknown> }>(await fetch(`${scaledApi}/v1/variants`, { headers: auth }));
      expect(Object.keys(variants.variants).sort()).toEqual(['public', 'thumb']);
      const copiedKeys = await expectOk<{ keys: Array<{ name: string; value: string }> }>(await fetch(`${scaledApi}/v1/keys`, { headers: auth }));
      expect(copiedKeys.keys).toEqual(keys.keys);
      const stats = await expectOk<{ count: { current: number } }>(await fetch(`${scaledApi}/v1/stats`, { headers: auth }));
      expect(stats.count.current).toBe(3);
      const scaledAlerting = `${scaled.url}/client/v4/accounts/${accountId}/alerting/v3`;
      const hooks = await expectOk<Array<{ id: string; url: string }>>(await fetch(`${scaledAlerting}/destinations/webhooks`, { headers: auth }));
      expect(hooks.map((h) => h.id)).toEqual([hook.id]);
      const policies = await expectOk<Array<{ id: string; mechanisms: unknown }>>(await fetch(`${scaledAlerting}/policies`, { headers: auth }));
      expect(policies).toMatchObject([{ id: policy.id, mechanisms: { webhooks: [{ id: hook.id }] } }]);
    } finally {
      await scaled.close();
    }
  });

  it('refuses a source a running server holds, and a target that is not PostgreSQL or S3', async () => {
    const source = tempDir();
    const accountId = randomAccountId();
    const running = await start({ PICTOR_DATA_DIR: source, PICTOR_BOOTSTRAP_ACCOUNT_ID: accountId, PICTOR_BOOTSTRAP_TOKEN: `t-${accountId}` });
    try {
      const database = await createTestDatabase();
      const busy = await runCli(['migrate-storage', '--from', source], { PICTOR_DATABASE_URL: database.url, PICTOR_DATA_DIR: tempDir() });
      expect(busy.code).not.toBe(0);
      expect(busy.stderr).toMatch(/running Pictor server/);
    } finally {
      await running.close();
    }
    const nowhere = await runCli(['migrate-storage', '--from', source], { PICTOR_DATA_DIR: tempDir() });
    expect(nowhere.code).not.toBe(0);
    expect(nowhere.stderr).toMatch(/PICTOR_DATABASE_URL/);
  });
});
