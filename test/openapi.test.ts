/**
 * `/client/v4/openapi.json`: a valid OpenAPI 3.1 document, generated from the route schemas, naming
 * exactly the routes the server registered; and real replies of the server match the response schemas
 * it documents (so the schemas cannot drift from the wire).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import { fileBlob, upload, useServer } from './helpers/server.js';

interface Operation {
  operationId?: string;
  tags?: string[];
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}
type OpenApiDocument = { openapi: string; paths: Record<string, Record<string, Operation>> };

const addFormats = addFormatsPlugin as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));

describe('OpenAPI document', () => {
  const s = useServer();
  let doc: OpenApiDocument;

  beforeAll(async () => {
    const res = await fetch(`${s.t.url}/client/v4/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    doc = (await res.json()) as OpenApiDocument;
  });

  it('is public and a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('names exactly the documented routes the server registered, each with an operation id', () => {
    const registered = s.t.server.app
      .registeredRoutes()
      .filter((route) => route.documented && route.method !== 'HEAD')
      .map((route) => `${route.method.toLowerCase()} ${route.url.replace(/:([A-Za-z_]+)/g, '{$1}')}`)
      .sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path}`))
      .sort();
    expect(documented).toEqual(registered);
    for (const operations of Object.values(doc.paths)) {
      for (const operation of Object.values(operations)) expect(operation.operationId).toMatch(/^[a-z0-9-]+$/);
    }
    // What Cloudflare's Images API has, and the SDK calls.
    for (const expected of [
      'post /client/v4/accounts/{account_id}/images/v1',
      'get /client/v4/accounts/{account_id}/images/v1',
      'get /client/v4/accounts/{account_id}/images/v2',
      'get /client/v4/accounts/{account_id}/images/v1/{image_id}',
      'get /client/v4/accounts/{account_id}/images/v1/{image_id}/blob',
      'patch /client/v4/accounts/{account_id}/images/v1/{image_id}',
      'delete /client/v4/accounts/{account_id}/images/v1/{image_id}',
      'get /client/v4/accounts/{account_id}/images/v1/stats',
      'post /client/v4/accounts/{account_id}/images/v1/variants',
      'put /client/v4/accounts/{account_id}/images/v1/keys/{signing_key_name}',
      'patch /client/v4/accounts/{account_id}/images/v1/config',
      'post /client/v4/accounts/{account_id}/images/v2/direct_upload',
      'post /upload/{account_hash}/{token}',
    ]) {
      expect(documented).toContain(expected);
    }
  });

  it('hides only aliases, the catch-all and routes outside the account API', () => {
    const hidden = s.t.server.app.registeredRoutes().filter((route) => !route.documented);
    for (const route of hidden) {
      const outsideApi = !route.url.startsWith('/client/v4/accounts/');
      expect(outsideApi || route.url.endsWith('/*'), `${route.method} ${route.url}`).toBe(true);
    }
  });

  /** Checks a real reply against the schema the document gives for its path, method and status. */
  async function expectDocumented(path: string, method: string, res: Response): Promise<unknown> {
    const operation = doc.paths[path]?.[method];
    expect(operation, `${method} ${path} is documented`).toBeDefined();
    const key = String(res.status) in (operation as Operation).responses ? String(res.status) : `${String(res.status)[0]}XX`;
    const schema = (operation as Operation).responses[key]?.content?.['application/json']?.schema;
    expect(schema, `${method} ${path} documents ${res.status}`).toBeDefined();
    const body: unknown = await res.json();
    const validate = ajv.compile(schema as object);
    expect(validate(body) ? [] : validate.errors, `${method} ${path} ${res.status}`).toEqual([]);
    return body;
  }

  it('real replies match the documented response schemas, errors included', async () => {
    const { t } = s;
    const images = '/client/v4/accounts/{account_id}/images';
    const json = { ...t.auth, 'content-type': 'application/json' };

    const uploaded = (await expectDocumented(`${images}/v1`, 'post', await upload(t, { file: fileBlob('320x240.jpg'), metadata: '{"k":"v"}' }))) as {
      result: { id: string };
    };
    const id = uploaded.result.id;
    await expectDocumented(`${images}/v1/{image_id}`, 'get', await fetch(`${t.imagesUrl}/v1/${id}`, { headers: t.auth }));
    await expectDocumented(
      `${images}/v1/{image_id}`,
      'patch',
      await fetch(`${t.imagesUrl}/v1/${id}`, { method: 'PATCH', headers: json, body: JSON.stringify({ creator: 'me' }) }),
    );
    await expectDocumented(`${images}/v1`, 'get', await fetch(`${t.imagesUrl}/v1?per_page=5`, { headers: t.auth }));
    await expectDocumented(`${images}/v2`, 'get', await fetch(`${t.imagesUrl}/v2?per_page=1`, { headers: t.auth }));
    await expectDocumented(`${images}/v1/stats`, 'get', await fetch(`${t.imagesUrl}/v1/stats`, { headers: t.auth }));
    await expectDocumented(
      `${images}/v1/variants`,
      'post',
      await fetch(`${t.imagesUrl}/v1/variants`, { method: 'POST', headers: json, body: JSON.stringify({ id: 'thumb', options: { width: 50 } }) }),
    );
    await expectDocumented(`${images}/v1/variants`, 'get', await fetch(`${t.imagesUrl}/v1/variants`, { headers: t.auth }));
    await expectDocumented(`${images}/v1/variants/{variant_id}`, 'get', await fetch(`${t.imagesUrl}/v1/variants/thumb`, { headers: t.auth }));
    await expectDocumented(`${images}/v1/keys`, 'get', await fetch(`${t.imagesUrl}/v1/keys`, { headers: t.auth }));
    await expectDocumented(`${images}/v1/keys/{signing_key_name}`, 'put', await fetch(`${t.imagesUrl}/v1/keys/second`, { method: 'PUT', headers: t.auth }));
    await expectDocumented(`${images}/v1/config`, 'get', await fetch(`${t.imagesUrl}/v1/config`, { headers: t.auth }));
    const minted = (await expectDocumented(
      `${images}/v2/direct_upload`,
      'post',
      await fetch(`${t.imagesUrl}/v2/direct_upload`, { method: 'POST', headers: json, body: JSON.stringify({ metadata: { a: 1 } }) }),
    )) as { result: { uploadURL: string } };
    const form = new FormData();
    form.append('file', fileBlob('320x240.jpg'));
    await expectDocumented('/upload/{account_hash}/{token}', 'post', await fetch(minted.result.uploadURL, { method: 'POST', body: form }));

    // Errors: a validation failure, an unknown image, an unknown variant, a refused upload.
    await expectDocumented(`${images}/v1`, 'get', await fetch(`${t.imagesUrl}/v1?per_page=0`, { headers: t.auth }));
    await expectDocumented(`${images}/v1/{image_id}`, 'get', await fetch(`${t.imagesUrl}/v1/nope`, { headers: t.auth }));
    await expectDocumented(`${images}/v1/variants/{variant_id}`, 'get', await fetch(`${t.imagesUrl}/v1/variants/nope`, { headers: t.auth }));
    await expectDocumented(`${images}/v1`, 'post', await upload(t, { file: new File([Buffer.from('not an image')], 'x.txt') }));
    await expectDocumented(`${images}/v1/{image_id}`, 'delete', await fetch(`${t.imagesUrl}/v1/${id}`, { method: 'DELETE', headers: t.auth }));
  });
});
