/**
 * The one HTTP error edge: every surface answers errors in its own format through one renderer, schema
 * failures name the field, a JSON body over its limit is told about the body, and libvips' own messages
 * never reach a client.
 */
import { describe, expect, it } from 'vitest';
import { expectApiError } from './helpers/api.js';
import { fileBlob, fixture, upload, useServer } from './helpers/server.js';

describe('HTTP error edge', () => {
  const s = useServer();
  const json = (): Record<string, string> => ({ ...s.t.auth, 'content-type': 'application/json' });

  it('a JSON body over 1 MiB is refused for its size, not with the 10 MB image message', async () => {
    const id = ((await (await upload(s.t, { file: fileBlob('320x240.jpg') })).json()) as { result: { id: string } }).result.id;
    const body = JSON.stringify({ metadata: { pad: 'x'.repeat(1_200_000) } });
    const res = await fetch(`${s.t.imagesUrl}/v1/${id}`, { method: 'PATCH', headers: json(), body });
    const envelope = await expectApiError(res, 413, 5413);
    const message = envelope.errors[0]?.message ?? '';
    expect(message).toMatch(/body/i);
    expect(message).not.toMatch(/image size|10 ?Mb/i);
  });

  it('a schema failure is 5400 naming the field', async () => {
    const res = await fetch(`${s.t.imagesUrl}/v1/variants`, {
      method: 'POST',
      headers: json(),
      body: JSON.stringify({ id: 'thumb', options: { width: '100' } }),
    });
    const envelope = await expectApiError(res, 400, 5400);
    expect(envelope.errors[0]?.message).toBe('body.options.width must be integer');

    const missing = await fetch(`${s.t.imagesUrl}/v1/variants`, { method: 'POST', headers: json(), body: JSON.stringify({ id: 'thumb' }) });
    expect((await expectApiError(missing, 400, 5400)).errors[0]?.message).toBe('body.options is required');

    const query = await fetch(`${s.t.imagesUrl}/v2?sort_order=sideways`, { headers: s.t.auth });
    expect((await expectApiError(query, 400, 5400)).errors[0]?.message).toMatch(/^querystring\.sort_order /);
  });

  it('a direct-upload mint with a body that is neither multipart nor JSON is refused, not silently ignored', async () => {
    const res = await fetch(`${s.t.imagesUrl}/v2/direct_upload`, {
      method: 'POST',
      headers: { ...s.t.auth, 'content-type': 'text/plain' },
      body: '{"requireSignedURLs": true}',
    });
    await expectApiError(res, 400, 5400);
    const empty = await fetch(`${s.t.imagesUrl}/v2/direct_upload`, { method: 'POST', headers: { ...s.t.auth, 'content-type': 'application/json' }, body: '' });
    expect(empty.status).toBe(200);
  });

  it('strings are never coerced into the booleans and numbers a JSON body needs', async () => {
    const res = await fetch(`${s.t.imagesUrl}/v1/config`, { method: 'PATCH', headers: json(), body: JSON.stringify({ flexible_variants: 'true' }) });
    await expectApiError(res, 400, 5400);
    const config = (await (await fetch(`${s.t.imagesUrl}/v1/config`, { headers: s.t.auth })).json()) as { result: { flexible_variants: boolean } };
    expect(config.result.flexible_variants).toBe(false);
  });

  it("libvips' messages stay in the log: a corrupt upload is told what is wrong in Pictor's words", async () => {
    for (const name of ['truncated.jpg', 'corrupt-header.jpg', 'truncated.png']) {
      const res = await upload(s.t, { file: new File([fixture(name)], name) });
      expect(res.status, name).toBeGreaterThanOrEqual(400);
      const message = ((await res.json()) as { errors: Array<{ message: string }> }).errors[0]?.message ?? '';
      expect(message, name).toMatch(/^Unsupported or unreadable image: /);
      expect(message, name).not.toMatch(/vips|jpeg|libpng|premature|VipsForeign/i);
    }
  });

  it('each surface keeps its own format for errors raised before routing (bad percent-encoding)', async () => {
    const api = await fetch(`${s.t.imagesUrl}/v1/%E0%A4%A`, { headers: s.t.auth });
    await expectApiError(api, 400, 5400);

    const uploadHost = await fetch(`${s.t.url}/upload/%E0%A4%A/x`, { method: 'POST' });
    await expectApiError(uploadHost.clone(), 400, 5400);
    expect(uploadHost.headers.get('access-control-allow-origin')).toBe('*');

    const delivery = await fetch(`${s.t.url}/%E0%A4%A/x/public`);
    expect(delivery.status).toBe(400);
    expect(delivery.headers.get('cf-resized')).toBe('err=9401');
    expect(await delivery.text()).toMatch(/^ERROR 9401: /);
  });

  it('errors raised by handlers use the same renderers: API envelope, upload-host envelope with CORS, delivery text', async () => {
    await expectApiError(await fetch(`${s.t.imagesUrl}/v1/missing`, { headers: s.t.auth }), 404, 5404);

    const form = new FormData();
    form.append('file', fileBlob('320x240.jpg'));
    const uploadHost = await fetch(`${s.t.url}/upload/${s.t.accountId}/not-a-token`, { method: 'POST', body: form });
    expect(uploadHost.headers.get('access-control-allow-origin')).toBe('*');
    expect(uploadHost.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await uploadHost.json()) as { success: boolean }).success).toBe(false);

    const delivery = await fetch(`${s.t.url}/nohash/missing/public`);
    expect(delivery.status).toBe(404);
    expect(await delivery.text()).toMatch(/^ERROR 9404: /);
  });
});
