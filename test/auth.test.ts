/**
 * Authentication and authorization on every image route (spec Part A, "Wire and envelope" → Auth):
 * malformed credentials → 400 6003 (+ 6111/6103 chain), unknown/revoked/foreign/insufficient → 403
 * 10000, no existence leaks across accounts, CLI-made credentials take effect on a running server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectApiError, expectOk, type ImageResult } from './helpers/api.js';
import { cliOk, lastLine } from './helpers/cli.js';
import { fileBlob, startTestServer, type TestServer } from './helpers/server.js';

type Headers = Record<string, string>;

interface Route {
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Path under `/client/v4/accounts/<account>/images`, for the given image id. */
  path: (imageId: string) => string;
  write: boolean;
}

const enc = encodeURIComponent;

const ROUTES: Route[] = [
  { name: 'POST v1', method: 'POST', path: () => '/v1', write: true },
  { name: 'GET v1', method: 'GET', path: () => '/v1', write: false },
  { name: 'GET v2', method: 'GET', path: () => '/v2', write: false },
  { name: 'GET v1/stats', method: 'GET', path: () => '/v1/stats', write: false },
  { name: 'GET v1/{id}', method: 'GET', path: (id) => `/v1/${enc(id)}`, write: false },
  { name: 'PATCH v1/{id}', method: 'PATCH', path: (id) => `/v1/${enc(id)}`, write: true },
  { name: 'DELETE v1/{id}', method: 'DELETE', path: (id) => `/v1/${enc(id)}`, write: true },
  { name: 'GET v1/{id}/blob', method: 'GET', path: (id) => `/v1/${enc(id)}/blob`, write: false },
];

function imagesBase(t: TestServer, accountId: string): string {
  return `${t.url}/client/v4/accounts/${accountId}/images`;
}

/** Sends `route` with a body that would be valid if authorized (a small file, or a JSON edit). */
function call(t: TestServer, accountId: string, route: Route, imageId: string, headers: Headers): Promise<Response> {
  const url = `${imagesBase(t, accountId)}${route.path(imageId)}`;
  if (route.method === 'POST') {
    const form = new FormData();
    form.append('file', fileBlob('circle.svg'));
    return fetch(url, { method: 'POST', body: form, headers });
  }
  if (route.method === 'PATCH') {
    return fetch(url, {
      method: 'PATCH',
      body: JSON.stringify({ metadata: { touched: 'yes' } }),
      headers: { ...headers, 'content-type': 'application/json' },
    });
  }
  return fetch(url, { method: route.method, headers });
}

function bearer(token: string): Headers {
  return { authorization: `Bearer ${token}` };
}

async function uploadId(t: TestServer, headers: Headers, accountId = t.accountId): Promise<string> {
  const form = new FormData();
  form.append('file', fileBlob('320x240.jpg'));
  const res = await fetch(`${imagesBase(t, accountId)}/v1`, { method: 'POST', body: form, headers });
  return (await expectOk<ImageResult>(res)).id;
}

let t: TestServer;
let cliEnv: Record<string, string>;
/** An image of account A that route tests may read (never deleted by them). */
let imageA: string;

beforeAll(async () => {
  t = await startTestServer();
  cliEnv = { ...t.storeEnv, PICTOR_LOG_LEVEL: 'warn' };
  imageA = await uploadId(t, t.auth);
});

afterAll(async () => {
  await t?.stop();
});

describe('malformed credentials → 400 6003', () => {
  const cases: Array<[string, Headers, number]> = [
    ['no credentials', {}, 6111],
    ['Authorization: Basic x', { authorization: 'Basic x' }, 6111],
    ['Authorization: Bearer (empty)', { authorization: 'Bearer ' }, 6111],
    ['a token with a space', { authorization: 'Bearer abc def' }, 6111],
    ['X-Auth-Email without X-Auth-Key', { 'x-auth-email': 'e@x.com' }, 6103],
  ];
  for (const route of ROUTES) {
    it.each(cases)(`${route.name}: %s`, async (_label, headers, chain) => {
      await expectApiError(await call(t, t.accountId, route, imageA, headers), 400, 6003, chain);
    });
  }

  const statsUrl = (): string => `${t.imagesUrl}/v1/stats`;

  it('X-Auth-Key without X-Auth-Email, or either of them empty → 400 6003/6103', async () => {
    const cases: Headers[] = [
      { 'x-auth-key': 'abcdef' },
      { 'x-auth-email': 'e@x.com', 'x-auth-key': '' },
      { 'x-auth-email': '', 'x-auth-key': 'abcdef' },
    ];
    for (const headers of cases) {
      await expectApiError(await fetch(statsUrl(), { headers }), 400, 6003, 6103);
    }
  });

  it('a 513-character token or one with a tab → 400 6003/6111; 512 characters is looked up (403 10000)', async () => {
    await expectApiError(await fetch(statsUrl(), { headers: bearer('t'.repeat(513)) }), 400, 6003, 6111);
    await expectApiError(await fetch(statsUrl(), { headers: bearer('abc\tdef') }), 400, 6003, 6111);
    await expectApiError(await fetch(statsUrl(), { headers: bearer('t'.repeat(512)) }), 403, 10000);
  });
});

describe('unknown credentials → 403 10000', () => {
  it.each(ROUTES.map((r) => [r.name, r] as const))('%s with an unknown bearer token', async (_name, route) => {
    await expectApiError(await call(t, t.accountId, route, imageA, bearer('no-such-token-1234')), 403, 10000);
  });

  it('an unknown X-Auth-Email + X-Auth-Key pair', async () => {
    const res = await fetch(`${t.imagesUrl}/v1/stats`, { headers: { 'x-auth-email': 'e@x.com', 'x-auth-key': 'nope' } });
    await expectApiError(res, 403, 10000);
  });
});

describe('cross-account access', () => {
  let accountB: string;
  let tokenB: string;
  let imageB: string;

  beforeAll(async () => {
    const created = await cliOk(['account', 'create'], cliEnv);
    accountB = /account id:\s+([0-9a-f]{32})/.exec(created.stdout)?.[1] ?? '';
    expect(accountB).toMatch(/^[0-9a-f]{32}$/);
    tokenB = lastLine((await cliOk(['token', 'create', '--account', accountB], cliEnv)).stdout);
    imageB = await uploadId(t, bearer(tokenB), accountB);
  });

  it("B's own token works on B's routes (control)", async () => {
    const res = await fetch(`${imagesBase(t, accountB)}/v1/${enc(imageB)}`, { headers: bearer(tokenB) });
    expect((await expectOk<ImageResult>(res)).id).toBe(imageB);
  });

  it.each(ROUTES.map((r) => [r.name, r] as const))(
    "%s: A's token on B's account → 403 10000, same body whether B's image exists or not",
    async (_name, route) => {
      const existing = await call(t, accountB, route, imageB, t.auth);
      const existingBody = await existing.clone().text();
      await expectApiError(existing, 403, 10000);
      const missing = await call(t, accountB, route, 'does-not-exist', t.auth);
      const missingBody = await missing.clone().text();
      await expectApiError(missing, 403, 10000);
      expect(missingBody).toBe(existingBody);
    },
  );

  it("A's token on an account that does not exist answers exactly as on B", async () => {
    const stats = ROUTES.find((r) => r.name === 'GET v1/stats') as Route;
    const onB = await (await call(t, accountB, stats, imageB, t.auth)).text();
    const res = await call(t, 'f'.repeat(32), stats, imageB, t.auth);
    const onNobody = await res.clone().text();
    await expectApiError(res, 403, 10000);
    expect(onNobody).toBe(onB);
  });

  it("B's image is untouched after A's refused writes", async () => {
    const res = await fetch(`${imagesBase(t, accountB)}/v1/${enc(imageB)}`, { headers: bearer(tokenB) });
    expect((await expectOk<ImageResult>(res)).meta).toEqual({});
  });
});

describe('CLI-issued credentials on the running server', () => {
  it('a read-only token can GET but POST/PATCH/DELETE → 403 10000', async () => {
    const readToken = lastLine(
      (await cliOk(['token', 'create', '--account', t.accountId, '--permission', 'images:read'], cliEnv)).stdout,
    );
    const headers = bearer(readToken);
    for (const route of ROUTES.filter((r) => !r.write)) {
      const res = await call(t, t.accountId, route, imageA, headers);
      expect(res.status, route.name).toBe(200);
      await res.arrayBuffer();
    }
    for (const route of ROUTES.filter((r) => r.write)) {
      await expectApiError(await call(t, t.accountId, route, imageA, headers), 403, 10000);
    }
    // Nothing was written: the image is still there with no metadata.
    const after = await expectOk<ImageResult>(await fetch(`${t.imagesUrl}/v1/${enc(imageA)}`, { headers: t.auth }));
    expect(after.meta).toEqual({});
  });

  it('a token revoked with `token revoke` is refused within a second', async () => {
    const name = `revoke-me-${Date.now()}`;
    const secret = lastLine((await cliOk(['token', 'create', '--account', t.accountId, '--name', name], cliEnv)).stdout);
    const statsUrl = `${t.imagesUrl}/v1/stats`;
    expect((await fetch(statsUrl, { headers: bearer(secret) })).status).toBe(200);

    const listed = (await cliOk(['token', 'list'], cliEnv)).stdout;
    const line = listed.split('\n').find((l) => l.includes(`"${name}"`));
    const id = line?.split(/\s+/)[0] ?? '';
    expect(id).not.toBe('');
    await cliOk(['token', 'revoke', id], cliEnv);

    const deadline = Date.now() + 1000;
    let status = 0;
    let res: Response;
    do {
      res = await fetch(statsUrl, { headers: bearer(secret) });
      status = res.status;
      if (status === 403) break;
      await res.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 50));
    } while (Date.now() < deadline);
    await expectApiError(res, 403, 10000);
    expect(status).toBe(403);
  });

  it('an X-Auth-Email + X-Auth-Key pair works; the same key with another email → 403 10000', async () => {
    const key = lastLine(
      (await cliOk(['key', 'create', '--account', t.accountId, '--email', 'e@x.com'], cliEnv)).stdout,
    );
    const statsUrl = `${t.imagesUrl}/v1/stats`;
    await expectOk(await fetch(statsUrl, { headers: { 'x-auth-email': 'e@x.com', 'x-auth-key': key } }));
    const id = await uploadId(t, { 'x-auth-email': 'e@x.com', 'x-auth-key': key });
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await expectApiError(
      await fetch(statsUrl, { headers: { 'x-auth-email': 'other@x.com', 'x-auth-key': key } }),
      403,
      10000,
    );
    // The key is not a bearer token.
    await expectApiError(await fetch(statsUrl, { headers: bearer(key) }), 403, 10000);
  });

  it('a key revoked with `token revoke` is refused', async () => {
    const email = `revoked-${Date.now()}@x.com`;
    const created = await cliOk(['key', 'create', '--account', t.accountId, '--email', email], cliEnv);
    const key = lastLine(created.stdout);
    const headers = { 'x-auth-email': email, 'x-auth-key': key };
    const statsUrl = `${t.imagesUrl}/v1/stats`;
    await expectOk(await fetch(statsUrl, { headers }));
    const listed = (await cliOk(['token', 'list', '--account', t.accountId], cliEnv)).stdout;
    expect(listed).not.toContain(key);
    const id = listed.split('\n').find((l) => l.includes(`email=${email}`))?.split(/\s+/)[0] ?? '';
    expect(id).not.toBe('');
    await cliOk(['token', 'revoke', id], cliEnv);
    await expectApiError(await fetch(statsUrl, { headers }), 403, 10000);
  });
});

describe('unknown routes', () => {
  it('with a valid token → 404 7003 in the envelope', async () => {
    await expectApiError(await fetch(`${t.url}/client/v4/nothing/here`, { headers: t.auth }), 404, 7003);
    await expectApiError(await fetch(`${t.imagesUrl}/v9/whatever`, { headers: t.auth }), 404, 7003);
  });

  it('without credentials reveals nothing (400 6003)', async () => {
    await expectApiError(await fetch(`${t.url}/client/v4/nothing/here`), 400, 6003, 6111);
  });
});
