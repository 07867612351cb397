/**
 * Direct creator upload from a real browser: headless Chromium (playwright-core, the system
 * /usr/bin/chromium) loads a page from ANOTHER origin (a node:http server on `localhost:<other port>`,
 * while Pictor listens on `127.0.0.1:<port>`), picks a fixture in an `<input type=file>` and sends it to
 * an upload URL minted by the test: with fetch + FormData (a simple CORS request, and one with a custom
 * header that forces a preflight) and with a plain HTML `<form enctype=multipart/form-data>` submission.
 * The result is then checked through the API: no longer a draft, bytes equal to the fixture.
 *
 * Needs the `chromium` Debian package. Skips only when /usr/bin/chromium does not exist.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobUrl, type Envelope, expectOk, type ImageResult } from './helpers/api.js';
import { FIXTURES, fixture, startTestServer, type TestServer } from './helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) {
  console.warn(`browser-upload.test.ts skipped: ${CHROMIUM} does not exist (apt-get install chromium)`);
}

interface Minted {
  id: string;
  uploadURL: string;
}

/** What the fetch page writes into #result once the upload answered (or failed). */
interface PageOutcome {
  status?: number;
  body?: Envelope<ImageResult>;
  error?: string;
}

/** A JSON value safe to embed in an inline <script>. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function escapeAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/** A page that uploads the chosen file with fetch + FormData and shows the JSON answer in the DOM. */
function fetchPage(uploadURL: string, headers: Record<string, string> = {}): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>upload</title></head>
<body>
<input type="file" id="file" accept="image/*">
<pre id="result"></pre>
<script>
  const UPLOAD_URL = ${scriptJson(uploadURL)};
  const HEADERS = ${scriptJson(headers)};
  const input = document.getElementById('file');
  const out = document.getElementById('result');
  input.addEventListener('change', async () => {
    const form = new FormData();
    form.append('file', input.files[0]);
    try {
      const res = await fetch(UPLOAD_URL, { method: 'POST', body: form, headers: HEADERS });
      const body = await res.json();
      out.textContent = JSON.stringify({ status: res.status, body });
    } catch (error) {
      out.textContent = JSON.stringify({ error: String(error) });
    }
    out.setAttribute('data-done', '1');
  });
</script>
</body></html>`;
}

/** The HTML form of Cloudflare's docs: no script at all. */
function formPage(uploadURL: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>form</title></head>
<body>
<form method="post" enctype="multipart/form-data" action="${escapeAttr(uploadURL)}">
  <input type="file" name="file" id="file">
  <button type="submit" id="send">Upload</button>
</form>
</body></html>`;
}

describe.skipIf(!HAVE_CHROMIUM)('direct creator upload from headless Chromium', () => {
  let t: TestServer;
  let browser: Browser;
  let pageServer: http.Server;
  /** `http://localhost:<port>`: a different origin from Pictor's `http://127.0.0.1:<port>`. */
  let pageOrigin: string;
  const pages = new Map<string, string>();
  let pageCounter = 0;

  beforeAll(async () => {
    t = await startTestServer();
    expect(new URL(t.url).hostname).toBe('127.0.0.1');
    pageServer = http.createServer((req, res) => {
      if (req.url === '/no-cors') {
        // An endpoint without CORS headers, for the control test.
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"success":true}');
        return;
      }
      const html = pages.get(req.url ?? '');
      if (html === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    });
    await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://localhost:${(pageServer.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    if (pageServer) {
      pageServer.closeAllConnections();
      await new Promise<void>((resolve) => pageServer.close(() => resolve()));
    }
    await t?.stop();
    if (t) fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  /** Serves `html` from the page origin and returns its URL. */
  function host(html: string): string {
    pageCounter += 1;
    const route = `/page-${pageCounter}.html`;
    pages.set(route, html);
    return `${pageOrigin}${route}`;
  }

  async function mint(fields: Record<string, string> = {}): Promise<Minted> {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    const res = await fetch(`${t.imagesUrl}/v2/direct_upload`, { method: 'POST', headers: t.auth, body: form });
    const minted = await expectOk<Minted>(res);
    expect(minted.uploadURL.startsWith(`${t.url}/`)).toBe(true);
    return minted;
  }

  async function getImage(id: string): Promise<ImageResult> {
    return expectOk<ImageResult>(await fetch(`${t.imagesUrl}/v1/${encodeURIComponent(id)}`, { headers: t.auth }));
  }

  async function blobBytes(id: string): Promise<Buffer> {
    const res = await fetch(blobUrl(t, id), { headers: t.auth });
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  /** Opens a fetch page in a fresh context, picks `fixtureName` and returns what the page saw. */
  async function uploadFromPage(
    uploadURL: string,
    fixtureName: string,
    headers: Record<string, string> = {},
  ): Promise<{ outcome: PageOutcome; preflights: number; allowOrigin: string | undefined }> {
    const context = await browser.newContext();
    try {
      const page: Page = await context.newPage();
      // Preflights are not surfaced as Playwright requests; the DevTools protocol shows them.
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      let preflights = 0;
      cdp.on('Network.requestWillBeSent', (event) => {
        if (event.request.method === 'OPTIONS' && event.request.url === uploadURL) preflights += 1;
      });
      let allowOrigin: string | undefined;
      page.on('response', (response) => {
        if (response.url() === uploadURL && response.request().method() === 'POST') {
          allowOrigin = response.headers()['access-control-allow-origin'];
        }
      });
      const pageUrl = host(fetchPage(uploadURL, headers));
      await page.goto(pageUrl);
      expect(new URL(page.url()).origin).not.toBe(new URL(uploadURL).origin);
      await page.setInputFiles('#file', path.join(FIXTURES, fixtureName));
      await page.waitForSelector('#result[data-done]', { timeout: 20_000 });
      const text = (await page.textContent('#result')) ?? '';
      return { outcome: JSON.parse(text) as PageOutcome, preflights, allowOrigin };
    } finally {
      await context.close();
    }
  }

  it('fetch + FormData from another origin: 200 with the image; the API shows it uploaded, bytes equal', async () => {
    const minted = await mint({ metadata: JSON.stringify({ from: 'browser' }), creator: 'browser-user' });
    expect((await getImage(minted.id)).draft).toBe(true);

    const { outcome, allowOrigin } = await uploadFromPage(minted.uploadURL, '320x240.jpg');
    expect(outcome.error, JSON.stringify(outcome)).toBeUndefined();
    expect(outcome.status, JSON.stringify(outcome)).toBe(200);
    // The page could read the answer at all only because of this header.
    expect(['*', pageOrigin]).toContain(allowOrigin);
    expect(outcome.body?.success).toBe(true);
    expect(outcome.body?.result?.id).toBe(minted.id);
    expect(outcome.body?.result?.filename).toBe('320x240.jpg');

    const image = await getImage(minted.id);
    expect(image).not.toHaveProperty('draft');
    expect(image.meta).toEqual({ from: 'browser' });
    expect(image.creator).toBe('browser-user');
    expect((await blobBytes(minted.id)).equals(fixture('320x240.jpg'))).toBe(true);
  });

  it('a request that needs a CORS preflight (custom header) also succeeds; a reuse is a readable 409', async () => {
    const minted = await mint();
    const first = await uploadFromPage(minted.uploadURL, 'with-alpha.png', { 'x-requested-with': 'pictor-test' });
    expect(first.outcome.error, JSON.stringify(first.outcome)).toBeUndefined();
    expect(first.outcome.status).toBe(200);
    expect(first.preflights).toBeGreaterThanOrEqual(1);
    expect((await getImage(minted.id)).draft).toBeUndefined();
    expect((await blobBytes(minted.id)).equals(fixture('with-alpha.png'))).toBe(true);

    // The page can read the error answer too (CORS headers on errors).
    const again = await uploadFromPage(minted.uploadURL, '320x240.jpg');
    expect(again.outcome.error, JSON.stringify(again.outcome)).toBeUndefined();
    expect(again.outcome.status).toBe(409);
    expect(again.outcome.body?.success).toBe(false);
    expect(again.outcome.body?.errors[0]?.code).toBe(5409);
    expect((await blobBytes(minted.id)).equals(fixture('with-alpha.png'))).toBe(true);
  });

  it('a refused file is readable by the page (415 5455) and leaves the URL usable', async () => {
    const minted = await mint();
    const refused = await uploadFromPage(minted.uploadURL, 'not-an-image.jpg');
    expect(refused.outcome.error, JSON.stringify(refused.outcome)).toBeUndefined();
    expect(refused.outcome.status).toBe(415);
    expect(refused.outcome.body?.errors[0]?.code).toBe(5455);
    expect((await getImage(minted.id)).draft).toBe(true);

    const ok = await uploadFromPage(minted.uploadURL, '4.webp');
    expect(ok.outcome.status).toBe(200);
    expect((await blobBytes(minted.id)).equals(fixture('4.webp'))).toBe(true);
  });

  it('control: the same kind of request to an endpoint without CORS headers fails (the origins really differ)', async () => {
    const port = (pageServer.address() as AddressInfo).port;
    const { outcome } = await uploadFromPage(`http://127.0.0.1:${port}/no-cors`, '320x240.jpg');
    expect(outcome.error, JSON.stringify(outcome)).toMatch(/TypeError/);
  });

  it('a plain HTML <form method=post enctype=multipart/form-data> submission works', async () => {
    const minted = await mint({ id: 'browser/form-upload' });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(host(formPage(minted.uploadURL)));
      await page.setInputFiles('#file', path.join(FIXTURES, 'Landscape_3.jpg'));
      const [response] = await Promise.all([
        page.waitForResponse((res) => res.url() === minted.uploadURL && res.request().method() === 'POST'),
        page.click('#send'),
      ]);
      expect(response.status()).toBe(200);
      const body = (await response.json()) as Envelope<ImageResult>;
      expect(body.success).toBe(true);
      expect(body.result?.id).toBe('browser/form-upload');
      expect(body.result?.filename).toBe('Landscape_3.jpg');
      const contentType = response.request().headers()['content-type'] ?? '';
      expect(contentType).toMatch(/^multipart\/form-data; boundary=/);
    } finally {
      await context.close();
    }
    const image = await getImage('browser/form-upload');
    expect(image).not.toHaveProperty('draft');
    expect((await blobBytes('browser/form-upload')).equals(fixture('Landscape_3.jpg'))).toBe(true);
  });
});
