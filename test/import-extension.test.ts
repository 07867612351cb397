/**
 * The import extension (a Pictor extension for moving an account here): a token created with
 * `--permission images:import` may upload with a UUID-shaped id, a custom id together with
 * requireSignedURLs, and the original upload time, and may give a signing key its value. Ordinary write
 * tokens still get Cloudflare's behaviour for all four.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cliOk, lastLine } from './helpers/cli.js';
import { fileBlob, upload, useServer } from './helpers/server.js';

const UUID = '0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9';
const UPLOADED = '2021-03-04T05:06:07.000Z';

interface Envelope<T> {
  success: boolean;
  errors: Array<{ code: number; message: string }>;
  result: T;
}

async function json<T>(res: Response): Promise<{ status: number; body: Envelope<T> }> {
  return { status: res.status, body: (await res.json()) as Envelope<T> };
}

describe('import extension', () => {
  const s = useServer();
  let importAuth: Record<string, string>;

  beforeAll(async () => {
    const created = await cliOk(['token', 'create', '--account', s.t.accountId, '--permission', 'images:import'], s.t.storeEnv);
    importAuth = { authorization: `Bearer ${lastLine(created.stdout)}` };
  });

  const fields = (extra: Record<string, string>): Record<string, string | Blob> => ({ file: fileBlob('320x240.jpg'), ...extra });

  it('an import token keeps a UUID-shaped id, requireSignedURLs with it, and the upload time', async () => {
    const { status, body } = await json<{ id: string; uploaded: string; requireSignedURLs: boolean }>(
      await upload(s.t, fields({ id: UUID, requireSignedURLs: 'true', uploaded: UPLOADED }), importAuth),
    );
    expect(status).toBe(200);
    expect(body.result).toMatchObject({ id: UUID, uploaded: UPLOADED, requireSignedURLs: true });
    const listed = await json<{ images: Array<{ id: string; uploaded: string }> }>(await fetch(`${s.t.imagesUrl}/v2?sort_order=asc`, { headers: s.t.auth }));
    expect(listed.body.result.images[0]).toMatchObject({ id: UUID, uploaded: UPLOADED });
  });

  it('an import token still gets every other rule: bad times, bad ids, duplicates', async () => {
    const future = new Date(Date.now() + 86_400_000).toISOString();
    const cases: Array<Record<string, string>> = [{ id: 'x/../y' }, { uploaded: 'yesterday' }, { uploaded: future }, { id: UUID }];
    for (const extra of cases) {
      const { status } = await json(await upload(s.t, fields(extra), importAuth));
      expect(status, JSON.stringify(extra)).toBe(extra.id === UUID ? 409 : 400);
    }
  });

  it('ordinary write tokens get Cloudflare\'s refusals and ignore `uploaded`', async () => {
    const uuid = await json(await upload(s.t, fields({ id: '11111111-2222-3333-4444-555555555555' })));
    expect([uuid.status, uuid.body.errors[0]?.code]).toEqual([400, 5400]);
    const signed = await json(await upload(s.t, fields({ id: 'custom/signed', requireSignedURLs: 'true' })));
    expect([signed.status, signed.body.errors[0]?.code]).toEqual([400, 5400]);
    const timed = await json<{ uploaded: string }>(await upload(s.t, fields({ uploaded: UPLOADED })));
    expect(timed.status).toBe(200);
    expect(Date.parse(timed.body.result.uploaded)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('PUT …/keys/{name} with a value sets it for an import token, and is a fresh random key for others', async () => {
    const value = 'imported-key-value-0123456789abcdef';
    const put = (auth: Record<string, string>, name: string): Promise<Response> =>
      fetch(`${s.t.imagesUrl}/v1/keys/${name}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ value }) });
    const imported = await json<{ keys: Array<{ name: string; value: string }> }>(await put(importAuth, 'moved'));
    expect(imported.body.result.keys.find((key) => key.name === 'moved')?.value).toBe(value);
    const ordinary = await json<{ keys: Array<{ name: string; value: string }> }>(await put(s.t.auth, 'fresh'));
    const fresh = ordinary.body.result.keys.find((key) => key.name === 'fresh')?.value;
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(value);
    // As on Cloudflare, no body at all works too.
    expect((await fetch(`${s.t.imagesUrl}/v1/keys/nobody`, { method: 'PUT', headers: s.t.auth })).status).toBe(200);
    const bad = await fetch(`${s.t.imagesUrl}/v1/keys/short`, { method: 'PUT', headers: { ...importAuth, 'content-type': 'application/json' }, body: '{"value":"too short"}' });
    expect(bad.status).toBe(400);
  });

  it('an import token may do what a write token does', async () => {
    const res = await upload(s.t, fields({}), importAuth);
    expect(res.status).toBe(200);
    expect((await fetch(`${s.t.imagesUrl}/v1/stats`, { headers: importAuth })).status).toBe(200);
  });
});
