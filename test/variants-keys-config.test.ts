/**
 * The account API for named variants, signing keys and delivery config, over plain HTTP and through the
 * official `cloudflare` SDK, against a real server. Read-only tokens come from the real CLI on the
 * server's data directory.
 *
 * Expectations: spec/cloudflare-images.md Part A ("Variants and delivery", "Signed URLs", "Wire and
 * envelope") and Part B §5.9, §5.10, §5.12.
 */
import Cloudflare, { APIError, BadRequestError, ConflictError, NotFoundError, PermissionDeniedError } from 'cloudflare';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectApiError, expectOk } from './helpers/api.js';
import { cliOk, lastLine } from './helpers/cli.js';
import { jsonRequest, type SigningKey, type VariantResult } from './helpers/delivery.js';
import { type TestServer, useServer } from './helpers/server.js';

const PUBLIC_VARIANT: VariantResult = {
  id: 'public',
  options: { fit: 'scale-down', width: 1366, height: 768, metadata: 'none' },
  neverRequireSignedURLs: false,
};

interface VariantsMap {
  variants: Record<string, VariantResult>;
}


function sdk(t: TestServer, options: { apiToken?: string; maxRetries?: number; fetch?: typeof fetch } = {}): Cloudflare {
  return new Cloudflare({
    apiToken: options.apiToken ?? t.token,
    apiKey: null,
    apiEmail: null,
    userServiceKey: null,
    baseURL: `${t.url}/client/v4`,
    maxRetries: options.maxRetries ?? 0,
    ...(options.fetch && { fetch: options.fetch }),
  });
}

type ErrorClass = abstract new (...args: never[]) => APIError;

/** Awaits an SDK call that must fail with `Class`, HTTP `status` and errors[0].code `code`. */
async function expectSdkError(call: Promise<unknown>, Class: ErrorClass, status: number, code: number): Promise<APIError> {
  let caught: unknown;
  try {
    await call;
  } catch (error) {
    caught = error;
  }
  expect(caught, 'the call should have failed').toBeInstanceOf(Class);
  const error = caught as APIError;
  expect(error.status).toBe(status);
  expect((error.errors as Array<{ code?: number }>)[0]?.code).toBe(code);
  return error;
}

const variantBody = (id: string, options: Record<string, unknown> = {}): Record<string, unknown> => ({
  id,
  options: { fit: 'scale-down', width: 200, height: 100, metadata: 'none', ...options },
});

async function listVariants(t: TestServer, headers: Record<string, string> = t.auth): Promise<Record<string, VariantResult>> {
  return (await expectOk<VariantsMap>(await jsonRequest(t, 'GET', '/v1/variants', undefined, headers))).variants;
}

async function listKeys(t: TestServer): Promise<SigningKey[]> {
  return (await expectOk<{ keys: SigningKey[] }>(await jsonRequest(t, 'GET', '/v1/keys'))).keys;
}

// ---------------------------------------------------------------------------------------------------
// Variants over HTTP
// ---------------------------------------------------------------------------------------------------

describe('variants (HTTP)', () => {
  const h = useServer();

  it('a new account lists only the built-in public variant, as a map keyed by name', async () => {
    const res = await jsonRequest(h.t, 'GET', '/v1/variants');
    const result = await expectOk<VariantsMap>(res);
    expect(result).toEqual({ variants: { public: PUBLIC_VARIANT } });
  });

  it('create → {variant: {id, options, neverRequireSignedURLs}}; get, list and edit agree', async () => {
    const t = h.t;
    const body = {
      id: 'thumb',
      options: { fit: 'cover', width: 100, height: 80, metadata: 'keep' },
      neverRequireSignedURLs: true,
    };
    const created = await expectOk<{ variant: VariantResult }>(await jsonRequest(t, 'POST', '/v1/variants', body));
    expect(Object.keys(created)).toEqual(['variant']);
    expect(created.variant).toEqual(body);

    const got = await expectOk<{ variant: VariantResult }>(await jsonRequest(t, 'GET', '/v1/variants/thumb'));
    expect(got).toEqual({ variant: body });

    const listed = await listVariants(t);
    expect(Object.keys(listed).sort()).toEqual(['public', 'thumb']);
    expect(listed.thumb).toEqual(body);

    const editedOptions = { fit: 'contain', width: 300, height: 200, metadata: 'copyright' };
    const edited = await expectOk<{ variant: VariantResult }>(
      await jsonRequest(t, 'PATCH', '/v1/variants/thumb', { options: editedOptions }),
    );
    // neverRequireSignedURLs is not in the PATCH body: it keeps its value.
    expect(edited).toEqual({ variant: { id: 'thumb', options: editedOptions, neverRequireSignedURLs: true } });
    const reread = await expectOk<{ variant: VariantResult }>(await jsonRequest(t, 'GET', '/v1/variants/thumb'));
    expect(reread).toEqual(edited);

    const flipped = await expectOk<{ variant: VariantResult }>(
      await jsonRequest(t, 'PATCH', '/v1/variants/thumb', { options: editedOptions, neverRequireSignedURLs: false }),
    );
    expect(flipped.variant.neverRequireSignedURLs).toBe(false);
  });

  it('neverRequireSignedURLs defaults to false; options.browser_ttl is kept', async () => {
    const t = h.t;
    const created = await expectOk<{ variant: VariantResult }>(
      await jsonRequest(t, 'POST', '/v1/variants', variantBody('withttl', { browser_ttl: 86_400 })),
    );
    expect(created.variant.neverRequireSignedURLs).toBe(false);
    expect(created.variant.options.browser_ttl).toBe(86_400);
  });

  it('DELETE → 200 {} and the variant is gone (404 5401 afterwards)', async () => {
    const t = h.t;
    await expectOk(await jsonRequest(t, 'POST', '/v1/variants', variantBody('doomed')));
    const deleted = await expectOk<unknown>(await jsonRequest(t, 'DELETE', '/v1/variants/doomed'));
    expect(deleted).toEqual({});
    await expectApiError(await jsonRequest(t, 'GET', '/v1/variants/doomed'), 404, 5401);
    await expectApiError(await jsonRequest(t, 'DELETE', '/v1/variants/doomed'), 404, 5401);
    expect(Object.keys(await listVariants(t))).not.toContain('doomed');
    // The name can be used again.
    await expectOk(await jsonRequest(t, 'POST', '/v1/variants', variantBody('doomed')));
  });

  it('names: letters and digits, 1–99 chars; "-", "_", other characters or 100 chars → 400 5400', async () => {
    const t = h.t;
    for (const id of ['my-variant', 'my_variant', 'a'.repeat(100), '', 'has space', 'dot.name', 'slash/name', 'ünï', 42, null]) {
      const res = await jsonRequest(t, 'POST', '/v1/variants', { ...variantBody('x'), id });
      await expectApiError(res, 400, 5400);
    }
    const longest = 'v'.repeat(99);
    const ok = await expectOk<{ variant: VariantResult }>(await jsonRequest(t, 'POST', '/v1/variants', variantBody(longest)));
    expect(ok.variant.id).toBe(longest);
    expect(Object.keys(await listVariants(t))).not.toContain('my-variant');
  });

  it('duplicate name → 409 5409 with x-should-retry: false (public included)', async () => {
    const t = h.t;
    await expectOk(await jsonRequest(t, 'POST', '/v1/variants', variantBody('dup')));
    for (const id of ['dup', 'public']) {
      const res = await jsonRequest(t, 'POST', '/v1/variants', variantBody(id, { width: 50 }));
      expect(res.headers.get('x-should-retry')).toBe('false');
      await expectApiError(res, 409, 5409);
    }
    // The original is untouched.
    const got = await expectOk<{ variant: VariantResult }>(await jsonRequest(t, 'GET', '/v1/variants/dup'));
    expect(got.variant.options.width).toBe(200);
  });

  it('unknown variant: GET, PATCH, DELETE → 404 5401', async () => {
    const t = h.t;
    await expectApiError(await jsonRequest(t, 'GET', '/v1/variants/nosuch'), 404, 5401);
    await expectApiError(
      await jsonRequest(t, 'PATCH', '/v1/variants/nosuch', { options: { fit: 'cover', width: 10, height: 10, metadata: 'none' } }),
      404,
      5401,
    );
    await expectApiError(await jsonRequest(t, 'DELETE', '/v1/variants/nosuch'), 404, 5401);
  });

  it('DELETE public → 200 and it is still listed (and still editable)', async () => {
    const t = h.t;
    expect(await expectOk<unknown>(await jsonRequest(t, 'DELETE', '/v1/variants/public'))).toEqual({});
    const listed = await listVariants(t);
    expect(listed.public).toEqual(PUBLIC_VARIANT);
    const got = await expectOk<{ variant: VariantResult }>(await jsonRequest(t, 'GET', '/v1/variants/public'));
    expect(got.variant).toEqual(PUBLIC_VARIANT);

    const options = { fit: 'scale-down', width: 1000, height: 1000, metadata: 'none' };
    const edited = await expectOk<{ variant: VariantResult }>(await jsonRequest(t, 'PATCH', '/v1/variants/public', { options }));
    expect(edited.variant.options).toEqual(options);
    await expectOk(await jsonRequest(t, 'DELETE', '/v1/variants/public'));
    expect((await listVariants(t)).public?.options).toEqual(options);
    await expectOk(await jsonRequest(t, 'PATCH', '/v1/variants/public', { options: PUBLIC_VARIANT.options }));
  });

  it('bad options → 400 5400 on create (nothing stored) and on edit (nothing changed)', async () => {
    const t = h.t;
    const bad: Array<Record<string, unknown>> = [
      { fit: 'stretch' },
      { width: 0 },
      { width: 10_000 },
      { height: 0 },
      { height: 10_000 },
      { width: -5 },
      { width: 1.5 },
      { width: '100' },
      { metadata: 'all' },
      { browser_ttl: 100 },
      { browser_ttl: 31_536_001 },
    ];
    for (const options of bad) {
      await expectApiError(await jsonRequest(t, 'POST', '/v1/variants', variantBody('badopts', options)), 400, 5400);
    }
    await expectApiError(await jsonRequest(t, 'POST', '/v1/variants', { id: 'badopts' }), 400, 5400);
    await expectApiError(await jsonRequest(t, 'POST', '/v1/variants', { id: 'badopts', options: 'big' }), 400, 5400);
    await expectApiError(
      await jsonRequest(t, 'POST', '/v1/variants', { ...variantBody('badopts'), neverRequireSignedURLs: 'yes' }),
      400,
      5400,
    );
    expect(Object.keys(await listVariants(t))).not.toContain('badopts');

    await expectOk(await jsonRequest(t, 'POST', '/v1/variants', variantBody('stable')));
    for (const options of bad) {
      const full = { fit: 'scale-down', width: 200, height: 100, metadata: 'none', ...options };
      await expectApiError(await jsonRequest(t, 'PATCH', '/v1/variants/stable', { options: full }), 400, 5400);
    }
    const got = await expectOk<{ variant: VariantResult }>(await jsonRequest(t, 'GET', '/v1/variants/stable'));
    expect(got.variant.options).toEqual({ fit: 'scale-down', width: 200, height: 100, metadata: 'none' });
  });

  it('widths at the bounds (1 and 9999) are accepted', async () => {
    const t = h.t;
    const created = await expectOk<{ variant: VariantResult }>(
      await jsonRequest(t, 'POST', '/v1/variants', variantBody('bounds', { width: 1, height: 9999 })),
    );
    expect(created.variant.options).toMatchObject({ width: 1, height: 9999 });
  });

  it('a body that is not JSON → 400 5400 in the JSON envelope', async () => {
    const t = h.t;
    const res = await fetch(`${t.imagesUrl}/v1/variants`, {
      method: 'POST',
      headers: { ...t.auth, 'content-type': 'application/json' },
      body: '{not json',
    });
    await expectApiError(res, 400, 5400);
  });
});

// ---------------------------------------------------------------------------------------------------
// Signing keys and config over HTTP
// ---------------------------------------------------------------------------------------------------

describe('signing keys (HTTP)', () => {
  const h = useServer();

  it('a new account has exactly one key named default with a non-trivial value', async () => {
    const keys = await listKeys(h.t);
    expect(keys.map((k) => k.name)).toEqual(['default']);
    expect(Object.keys(keys[0] ?? {}).sort()).toEqual(['name', 'value']);
    expect(typeof keys[0]?.value).toBe('string');
    expect((keys[0]?.value ?? '').length).toBeGreaterThanOrEqual(20);
  });

  it('PUT (no body) creates a key and returns all keys; PUT on an existing name changes its value only', async () => {
    const t = h.t;
    const before = await listKeys(t);
    const res = await fetch(`${t.imagesUrl}/v1/keys/second`, { method: 'PUT', headers: t.auth });
    const afterPut = (await expectOk<{ keys: SigningKey[] }>(res)).keys;
    expect(afterPut.map((k) => k.name).sort()).toEqual(['default', 'second']);
    expect(afterPut.find((k) => k.name === 'default')?.value).toBe(before[0]?.value);
    const second = afterPut.find((k) => k.name === 'second')?.value ?? '';
    expect(second.length).toBeGreaterThanOrEqual(20);
    expect(second).not.toBe(before[0]?.value);

    const again = (await expectOk<{ keys: SigningKey[] }>(await jsonRequest(t, 'PUT', '/v1/keys/second'))).keys;
    expect(again.map((k) => k.name).sort()).toEqual(['default', 'second']);
    expect(again.find((k) => k.name === 'second')?.value).not.toBe(second);
    expect(again.find((k) => k.name === 'default')?.value).toBe(before[0]?.value);
    expect(await listKeys(t)).toEqual(again);
  });

  it('DELETE returns the remaining keys; deleting the last key leaves a new default with a new value', async () => {
    const t = h.t;
    const remaining = (await expectOk<{ keys: SigningKey[] }>(await jsonRequest(t, 'DELETE', '/v1/keys/second'))).keys;
    expect(remaining.map((k) => k.name)).toEqual(['default']);
    const oldValue = remaining[0]?.value;

    const afterLast = (await expectOk<{ keys: SigningKey[] }>(await jsonRequest(t, 'DELETE', '/v1/keys/default'))).keys;
    expect(afterLast.map((k) => k.name)).toEqual(['default']);
    expect(afterLast[0]?.value).not.toBe(oldValue);
    expect((afterLast[0]?.value ?? '').length).toBeGreaterThanOrEqual(20);
    expect(await listKeys(t)).toEqual(afterLast);

    // Deleting default while another key exists does not regenerate it.
    await jsonRequest(t, 'PUT', '/v1/keys/other').then(expectOk);
    const onlyOther = (await expectOk<{ keys: SigningKey[] }>(await jsonRequest(t, 'DELETE', '/v1/keys/default'))).keys;
    expect(onlyOther.map((k) => k.name)).toEqual(['other']);
  });

  it('unknown key DELETE → 404 5404', async () => {
    await expectApiError(await jsonRequest(h.t, 'DELETE', '/v1/keys/nosuchkey'), 404, 5404);
  });

  it('names: 1–20 letters and digits; 21 chars or "-"/"_" → 400 5400', async () => {
    const t = h.t;
    for (const name of ['k'.repeat(21), 'my-key', 'my_key']) {
      await expectApiError(await jsonRequest(t, 'PUT', `/v1/keys/${name}`), 400, 5400);
    }
    const keys = (await expectOk<{ keys: SigningKey[] }>(await jsonRequest(t, 'PUT', `/v1/keys/${'k'.repeat(20)}`))).keys;
    expect(keys.map((k) => k.name)).toContain('k'.repeat(20));
    expect(keys.map((k) => k.name)).not.toContain('my-key');
  });
});

describe('config (HTTP)', () => {
  const h = useServer();

  it('GET defaults: {flexible_variants: false, browser_ttl: 172800}', async () => {
    expect(await expectOk(await jsonRequest(h.t, 'GET', '/v1/config'))).toEqual({ flexible_variants: false, browser_ttl: 172_800 });
  });

  it('PATCH updates the given fields and returns the whole config', async () => {
    const t = h.t;
    expect(await expectOk(await jsonRequest(t, 'PATCH', '/v1/config', { flexible_variants: true }))).toEqual({
      flexible_variants: true,
      browser_ttl: 172_800,
    });
    expect(await expectOk(await jsonRequest(t, 'PATCH', '/v1/config', { browser_ttl: 3600 }))).toEqual({
      flexible_variants: true,
      browser_ttl: 3600,
    });
    expect(await expectOk(await jsonRequest(t, 'PATCH', '/v1/config', { browser_ttl: 31_536_000 }))).toEqual({
      flexible_variants: true,
      browser_ttl: 31_536_000,
    });
    expect(await expectOk(await jsonRequest(t, 'GET', '/v1/config'))).toEqual({ flexible_variants: true, browser_ttl: 31_536_000 });
  });

  it('PATCH validates: browser_ttl out of 3600–31536000 or not a whole number, flexible_variants not boolean → 400 5400', async () => {
    const t = h.t;
    const bad: unknown[] = [
      { browser_ttl: 100 },
      { browser_ttl: 3599 },
      { browser_ttl: 31_536_001 },
      { browser_ttl: '7200' },
      { browser_ttl: 7200.5 },
      { flexible_variants: 'yes' },
      { flexible_variants: 1 },
      { flexible_variants: null },
      // A valid field next to an invalid one: nothing is applied.
      { flexible_variants: false, browser_ttl: 100 },
      [],
      'true',
    ];
    for (const body of bad) {
      await expectApiError(await jsonRequest(t, 'PATCH', '/v1/config', body), 400, 5400);
    }
    expect(await expectOk(await jsonRequest(t, 'GET', '/v1/config'))).toEqual({ flexible_variants: true, browser_ttl: 31_536_000 });
  });
});

// ---------------------------------------------------------------------------------------------------
// Limits (own server: these fill the account)
// ---------------------------------------------------------------------------------------------------

describe('limits', () => {
  const h = useServer();

  it('100 variants per account (public counts): the 101st → 400 5400; after a delete there is room again', async () => {
    const t = h.t;
    for (let i = 1; i <= 99; i++) {
      const res = await jsonRequest(t, 'POST', '/v1/variants', variantBody(`v${i}`));
      expect(res.status, `variant ${i + 1}`).toBe(200);
      await res.arrayBuffer();
    }
    expect(Object.keys(await listVariants(t))).toHaveLength(100);
    await expectApiError(await jsonRequest(t, 'POST', '/v1/variants', variantBody('onetoomany')), 400, 5400);
    expect(Object.keys(await listVariants(t))).toHaveLength(100);
    await expectOk(await jsonRequest(t, 'DELETE', '/v1/variants/v1'));
    await expectOk(await jsonRequest(t, 'POST', '/v1/variants', variantBody('onetoomany')));
  });

  it('10 signing keys per account: the 11th → 400 5400; rotating an existing one still works at the limit', async () => {
    const t = h.t;
    for (let i = 2; i <= 10; i++) await expectOk(await jsonRequest(t, 'PUT', `/v1/keys/key${i}`));
    expect(await listKeys(t)).toHaveLength(10);
    await expectApiError(await jsonRequest(t, 'PUT', '/v1/keys/key11'), 400, 5400);
    const before = (await listKeys(t)).find((k) => k.name === 'key5')?.value;
    const rotated = (await expectOk<{ keys: SigningKey[] }>(await jsonRequest(t, 'PUT', '/v1/keys/key5'))).keys;
    expect(rotated).toHaveLength(10);
    expect(rotated.find((k) => k.name === 'key5')?.value).not.toBe(before);
  });
});

// ---------------------------------------------------------------------------------------------------
// Read-only tokens (issued by the CLI)
// ---------------------------------------------------------------------------------------------------

describe('read-only token', () => {
  const h = useServer();
  let readOnly: Record<string, string>;

  beforeAll(async () => {
    const t = h.t;
    const created = await cliOk(['token', 'create', '--account', t.accountId, '--permission', 'images:read'], {
      ...t.storeEnv,
      PICTOR_LOG_LEVEL: 'warn',
    });
    readOnly = { authorization: `Bearer ${lastLine(created.stdout)}` };
    await expectOk(await jsonRequest(t, 'POST', '/v1/variants', variantBody('existing')));
  });

  it('can GET variants, a variant, keys and config', async () => {
    const t = h.t;
    for (const path of ['/v1/variants', '/v1/variants/existing', '/v1/keys', '/v1/config']) {
      const res = await jsonRequest(t, 'GET', path, undefined, readOnly);
      expect(res.status, path).toBe(200);
      await expectOk(res);
    }
  });

  it('cannot POST/PATCH/PUT/DELETE (403 10000) and nothing changes', async () => {
    const t = h.t;
    const keysBefore = await listKeys(t);
    const writes: Array<[string, string, unknown]> = [
      ['POST', '/v1/variants', variantBody('sneaky')],
      ['PATCH', '/v1/variants/existing', { options: { fit: 'cover', width: 10, height: 10, metadata: 'none' } }],
      ['DELETE', '/v1/variants/existing', undefined],
      ['DELETE', '/v1/variants/public', undefined],
      ['PUT', '/v1/keys/sneaky', undefined],
      ['PUT', '/v1/keys/default', undefined],
      ['DELETE', '/v1/keys/default', undefined],
      ['PATCH', '/v1/config', { flexible_variants: true }],
    ];
    for (const [method, path, body] of writes) {
      await expectApiError(await jsonRequest(t, method, path, body, readOnly), 403, 10000);
    }
    const variants = await listVariants(t);
    expect(Object.keys(variants).sort()).toEqual(['existing', 'public']);
    expect(variants.existing?.options).toEqual({ fit: 'scale-down', width: 200, height: 100, metadata: 'none' });
    expect(await listKeys(t)).toEqual(keysBefore);
    expect(await expectOk(await jsonRequest(t, 'GET', '/v1/config'))).toEqual({ flexible_variants: false, browser_ttl: 172_800 });
  });

  it('the SDK with a read-only token: list works, create → PermissionDeniedError 10000', async () => {
    const t = h.t;
    const token = (readOnly.authorization ?? '').slice('Bearer '.length);
    const client = sdk(t, { apiToken: token });
    const listed = await client.images.v1.variants.list({ account_id: t.accountId });
    expect(Object.keys(listed.variants ?? {}).sort()).toEqual(['existing', 'public']);
    await expectSdkError(
      client.images.v1.variants.create({
        account_id: t.accountId,
        id: 'sneaky',
        options: { fit: 'cover', width: 10, height: 10, metadata: 'none' },
      }),
      PermissionDeniedError,
      403,
      10000,
    );
    await expectSdkError(client.images.v1.keys.update('sneaky', { account_id: t.accountId }), PermissionDeniedError, 403, 10000);
  });
});

// ---------------------------------------------------------------------------------------------------
// The official SDK
// ---------------------------------------------------------------------------------------------------

describe('official SDK', () => {
  const h = useServer();

  it('variants.list → {variants: {public: …}} (a keyed map)', async () => {
    const t = h.t;
    const listed = await sdk(t).images.v1.variants.list({ account_id: t.accountId });
    expect(listed).toEqual({ variants: { public: PUBLIC_VARIANT } });
  });

  it('variants.create/get/edit/delete round trip', async () => {
    const t = h.t;
    const client = sdk(t);
    const account_id = t.accountId;
    const options = { fit: 'cover', width: 320, height: 200, metadata: 'none' } as const;
    const created = await client.images.v1.variants.create({ account_id, id: 'hero', options, neverRequireSignedURLs: true });
    expect(created).toEqual({ variant: { id: 'hero', options, neverRequireSignedURLs: true } });

    const got = await client.images.v1.variants.get('hero', { account_id });
    expect(got).toEqual(created);

    const listed = await client.images.v1.variants.list({ account_id });
    expect(Object.keys(listed.variants ?? {}).sort()).toEqual(['hero', 'public']);
    expect(listed.variants?.hero).toEqual(created.variant);

    const newOptions = { fit: 'pad', width: 640, height: 400, metadata: 'copyright' } as const;
    const edited = await client.images.v1.variants.edit('hero', { account_id, options: newOptions, neverRequireSignedURLs: false });
    expect(edited).toEqual({ variant: { id: 'hero', options: newOptions, neverRequireSignedURLs: false } });
    expect(await client.images.v1.variants.get('hero', { account_id })).toEqual(edited);

    const deleted = await client.images.v1.variants.delete('hero', { account_id });
    expect(deleted).toEqual({});
    await expectSdkError(client.images.v1.variants.get('hero', { account_id }), NotFoundError, 404, 5401);
  });

  it('errors surface as typed SDK errors: bad name → BadRequestError 5400, duplicate → ConflictError 5409, unknown → NotFoundError 5401', async () => {
    const t = h.t;
    const client = sdk(t);
    const account_id = t.accountId;
    const options = { fit: 'scale-down', width: 100, height: 100, metadata: 'none' } as const;
    for (const id of ['bad-name', 'bad_name', 'n'.repeat(100)]) {
      await expectSdkError(client.images.v1.variants.create({ account_id, id, options }), BadRequestError, 400, 5400);
    }
    await expectSdkError(
      client.images.v1.variants.create({ account_id, id: 'badfit', options: { ...options, fit: 'stretch' as 'cover' } }),
      BadRequestError,
      400,
      5400,
    );
    await expectSdkError(
      client.images.v1.variants.create({ account_id, id: 'badwidth', options: { ...options, width: 0 } }),
      BadRequestError,
      400,
      5400,
    );
    await client.images.v1.variants.create({ account_id, id: 'twice', options });
    await expectSdkError(client.images.v1.variants.create({ account_id, id: 'twice', options }), ConflictError, 409, 5409);
    await expectSdkError(client.images.v1.variants.get('nosuch', { account_id }), NotFoundError, 404, 5401);
    await expectSdkError(client.images.v1.variants.edit('nosuch', { account_id, options }), NotFoundError, 404, 5401);
    await expectSdkError(client.images.v1.variants.delete('nosuch', { account_id }), NotFoundError, 404, 5401);
  });

  it('a duplicate is not retried by an SDK with retries on (x-should-retry: false): one request only', async () => {
    const t = h.t;
    let requests = 0;
    const counting: typeof fetch = (input, init) => {
      requests += 1;
      return fetch(input, init);
    };
    const client = sdk(t, { maxRetries: 2, fetch: counting });
    const options = { fit: 'scale-down', width: 100, height: 100, metadata: 'none' } as const;
    await client.images.v1.variants.create({ account_id: t.accountId, id: 'retrycheck', options });
    requests = 0;
    await expectSdkError(
      client.images.v1.variants.create({ account_id: t.accountId, id: 'retrycheck', options }),
      ConflictError,
      409,
      5409,
    );
    expect(requests).toBe(1);
  });

  it('variants.delete("public") resolves and public is still listed', async () => {
    const t = h.t;
    const client = sdk(t);
    expect(await client.images.v1.variants.delete('public', { account_id: t.accountId })).toEqual({});
    const listed = await client.images.v1.variants.list({ account_id: t.accountId });
    // The SDK's type only declares `hero`; the payload is a map keyed by every name.
    const map: Record<string, unknown> = { ...listed.variants };
    expect(map.public).toEqual(PUBLIC_VARIANT);
  });

  it('keys.list/update/delete', async () => {
    const t = h.t;
    const client = sdk(t);
    const account_id = t.accountId;
    const initial = await client.images.v1.keys.list({ account_id });
    expect(initial.keys?.map((k) => k.name)).toEqual(['default']);
    const defaultValue = initial.keys?.[0]?.value;

    const updated = await client.images.v1.keys.update('second', { account_id });
    expect(updated.keys?.map((k) => k.name).sort()).toEqual(['default', 'second']);
    const secondValue = updated.keys?.find((k) => k.name === 'second')?.value;
    expect(secondValue).toBeTruthy();

    const rotated = await client.images.v1.keys.update('second', { account_id });
    expect(rotated.keys?.find((k) => k.name === 'second')?.value).not.toBe(secondValue);
    expect(rotated.keys?.find((k) => k.name === 'default')?.value).toBe(defaultValue);

    const afterDelete = await client.images.v1.keys.delete('second', { account_id });
    expect(afterDelete.keys?.map((k) => k.name)).toEqual(['default']);

    const regenerated = await client.images.v1.keys.delete('default', { account_id });
    expect(regenerated.keys?.map((k) => k.name)).toEqual(['default']);
    expect(regenerated.keys?.[0]?.value).not.toBe(defaultValue);
    expect(await client.images.v1.keys.list({ account_id })).toEqual(regenerated);

    await expectSdkError(client.images.v1.keys.delete('nosuchkey', { account_id }), NotFoundError, 404, 5404);
    await expectSdkError(client.images.v1.keys.update('k'.repeat(21), { account_id }), BadRequestError, 400, 5400);
  });
});
