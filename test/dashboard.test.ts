/**
 * The web dashboard at /dashboard, driven in headless Debian Chromium (playwright-core) by role and
 * accessible name, as assistive technology reads it. Every change made in the page is checked through
 * the account API (the official SDK or plain fetch), not through the page. Along the way: no request
 * leaves the server's origin, nothing is logged to the console as an error, and screenshots of the
 * main views at 1280 px and 390 px are written to test-results/dashboard/ (not committed).
 *
 * Needs the `chromium` Debian package. Skips only when /usr/bin/chromium does not exist.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Cloudflare from 'cloudflare';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, fixture, startTestServer, type TestServer } from './helpers/server.js';
import { startReceiver } from './helpers/webhook-receiver.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
const PROJECT_ROOT = path.resolve(import.meta.dirname, '..');
const SCREENSHOTS = path.join(PROJECT_ROOT, 'test-results/dashboard');
if (!HAVE_CHROMIUM) console.warn(`dashboard.test.ts skipped: ${CHROMIUM} does not exist (apt-get install chromium)`);

interface ApiImage {
  id: string;
  filename: string;
  meta: Record<string, unknown>;
  requireSignedURLs: boolean;
  variants: string[];
}

describe.skipIf(!HAVE_CHROMIUM)('web dashboard in headless Chromium', () => {
  let t: TestServer;
  let cf: Cloudflare;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const foreignRequests: string[] = [];
  const consoleErrors: string[] = [];
  let sdkImage: ApiImage;

  async function apiImages(): Promise<ApiImage[]> {
    const res = await fetch(`${t.imagesUrl}/v2?per_page=100`, { headers: t.auth });
    return ((await res.json()) as { result: { images: ApiImage[] } }).result.images;
  }

  async function apiImage(id: string): Promise<{ status: number; image?: ApiImage }> {
    const res = await fetch(`${t.imagesUrl}/v1/${encodeURIComponent(id)}`, { headers: t.auth });
    const body = (await res.json()) as { result: ApiImage | null };
    return { status: res.status, ...(body.result && { image: body.result }) };
  }

  /** Screenshots at 1280 and 390 px; at those and at 360 and 1920 px nothing is wider than the window. */
  async function screenshot(name: string): Promise<void> {
    for (const width of [1280, 390, 360, 1920]) {
      await page.setViewportSize({ width, height: 900 });
      if (width === 1280 || width === 390) await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
      const overflow = (await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
      expect(overflow, `${name} at ${width} px`).toBeLessThanOrEqual(0);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  }

  beforeAll(async () => {
    // The page under test is the one built from this checkout's dashboard sources.
    execFileSync(process.execPath, ['scripts/build-dashboard.mjs'], { cwd: PROJECT_ROOT, stdio: 'pipe' });
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    // Loopback webhook receivers are allowed for the webhooks view's test.
    t = await startTestServer({ PICTOR_ALLOW_PRIVATE_URLS: 'true' });
    cf = new Cloudflare({ apiToken: t.token, apiKey: null, apiEmail: null, userServiceKey: null, baseURL: `${t.url}/client/v4`, maxRetries: 0 });
    await cf.images.v1.create({ account_id: t.accountId, file: await Cloudflare.toFile(fixture('Landscape_1.jpg'), 'sdk-landscape.jpg') });
    sdkImage = (await cf.images.v1.create({
      account_id: t.accountId,
      file: await Cloudflare.toFile(fixture('320x240.jpg'), 'sdk-small.jpg'),
      metadata: { origin: 'sdk' },
    })) as unknown as ApiImage;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
    page = await context.newPage();
    const origin = new URL(t.url).origin;
    page.on('request', (request) => {
      const url = request.url();
      if (!url.startsWith('blob:') && !url.startsWith('data:') && new URL(url).origin !== origin) foreignRequests.push(url);
    });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('is served with a strict CSP, no framing, an uncached page and immutable hashed assets', async () => {
    const res = await fetch(`${t.url}/dashboard`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const html = await res.text();
    expect(html).not.toMatch(/<script>[^<]/);
    const script = /src="(\/dashboard\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)?.[1] ?? '';
    const asset = await fetch(`${t.url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toContain('text/javascript');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await fetch(`${t.url}/dashboard/assets/missing-0000.js`)).status).toBe(404);
  });

  it('a wrong token is refused with the server\'s message, and the page stays on sign-in', async () => {
    await page.goto(`${t.url}/dashboard`);
    await page.getByLabel('API token').fill('not-the-right-token-123456');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Invalid API Token');
    expect(await page.getByRole('button', { name: 'Sign in' }).isVisible()).toBe(true);
    await screenshot('sign-in');
  });

  it('signs in with a token kept in sessionStorage only, and shows the images uploaded through the SDK', async () => {
    await page.getByLabel('API token').fill(t.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Images' }).waitFor();
    await page.getByRole('img', { name: 'sdk-landscape.jpg' }).waitFor();
    await page.getByRole('img', { name: 'sdk-small.jpg' }).waitFor();
    await expect.poll(() => page.getByText(/2 of 100,000 images/).count()).toBe(1);
    const stored = (await page.evaluate('JSON.stringify(sessionStorage)')) as string;
    expect(stored).toContain(t.token);
    expect(await context.cookies()).toEqual([]);
    expect(page.url()).not.toContain(t.token);
    // The tiles really loaded (a broken <img> has no natural size).
    const tile = page.getByRole('img', { name: 'sdk-small.jpg' });
    await expect.poll(() => tile.evaluate((img: { complete: boolean; naturalWidth: number }) => (img.complete ? img.naturalWidth : 0))).toBeGreaterThan(0);
    await screenshot('images');
  });

  it('uploads three files through the input, each through its own direct-upload URL, and they appear without a reload', async () => {
    const names = ['Landscape_2.jpg', 'with-alpha.png', '4.webp'];
    await page.getByLabel('Upload images').setInputFiles(names.map((name) => path.join(FIXTURES, name)));
    const uploads = page.getByRole('region', { name: 'Uploads' });
    await expect.poll(() => uploads.getByText('Uploaded', { exact: true }).count(), { timeout: 20_000 }).toBe(3);
    for (const name of names) await page.getByRole('img', { name }).waitFor();
    const listed = (await apiImages()).map((image) => image.filename);
    expect(listed).toEqual(expect.arrayContaining(names));
    await expect.poll(() => page.getByText(/5 of 100,000 images/).count()).toBe(1);
  });

  it('uploads a file dropped onto the grid', async () => {
    const bytes = fixture('Landscape_3.jpg').toString('base64');
    // Runs in the page (as text: the test's own type check has no DOM): a drop event carrying one file.
    await page.evaluate(`(() => {
      const data = Uint8Array.from(atob(${JSON.stringify('BASE64')}), (char) => char.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([data], 'dropped.jpg', { type: 'image/jpeg' }));
      const zone = document.querySelector('.dropzone');
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    })()`.replace('BASE64', bytes));
    await page.getByRole('img', { name: 'dropped.jpg' }).waitFor({ timeout: 20_000 });
    expect((await apiImages()).map((image) => image.filename)).toContain('dropped.jpg');
  });

  it('shows each failed upload with the server\'s code, and the others still succeed', async () => {
    await page.getByLabel('Upload images').setInputFiles([path.join(FIXTURES, 'not-an-image.jpg')]);
    const failure = page.getByRole('region', { name: 'Uploads' }).getByRole('alert');
    await expect.poll(() => failure.textContent(), { timeout: 20_000 }).toMatch(/Failed: .*\(code 5\d{3}\)/);
    expect((await apiImages()).map((image) => image.filename)).not.toContain('not-an-image.jpg');
  });

  it('opens an image by keyboard and shows its original\'s size, format and dimensions, id and variants', async () => {
    await page.getByRole('button', { name: 'sdk-small.jpg' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'sdk-small.jpg' });
    await dialog.waitFor();
    await expect.poll(() => dialog.getByText('320 × 240 px').count()).toBe(1);
    expect(await dialog.getByText('JPEG', { exact: true }).count()).toBe(1);
    expect(await dialog.getByText(`${fixture('320x240.jpg').length.toLocaleString('en-US')} bytes`, { exact: false }).count()).toBe(1);
    expect(await dialog.getByText(sdkImage.id, { exact: true }).count()).toBe(1);
    const url = await dialog.getByRole('textbox', { name: 'URL of variant public' }).inputValue();
    expect(url).toBe(sdkImage.variants[0]);
    await dialog.getByRole('button', { name: 'Copy URL of variant public' }).click();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(url);
    await dialog.getByRole('img', { name: 'Preview of variant public' }).waitFor();
    await screenshot('image-detail');
  });

  it('saves metadata, and shows the server\'s refusal of metadata it will not take', async () => {
    const dialog = page.getByRole('dialog', { name: 'sdk-small.jpg' });
    await dialog.getByRole('textbox', { name: 'Metadata' }).fill('{"team": "blue", "n": 3}');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect.poll(async () => (await apiImage(sdkImage.id)).image?.meta).toEqual({ team: 'blue', n: 3 });
    await dialog.getByRole('textbox', { name: 'Metadata' }).fill(JSON.stringify({ big: 'x'.repeat(2000) }));
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toMatch(/\(code 5400\)/);
    expect((await apiImage(sdkImage.id)).image?.meta).toEqual({ team: 'blue', n: 3 });
  });

  it('requires signed URLs, and shows a signed preview URL that delivers while the unsigned one is refused', async () => {
    const dialog = page.getByRole('dialog', { name: 'sdk-small.jpg' });
    await dialog.getByRole('checkbox', { name: 'Require signed URLs' }).check();
    await expect.poll(async () => (await apiImage(sdkImage.id)).image?.requireSignedURLs).toBe(true);
    const signed = await dialog.getByRole('textbox', { name: /Signed preview URL/ }).inputValue();
    expect(signed).toMatch(/[?&]sig=[0-9a-f]{64}/);
    expect((await fetch(signed)).status).toBe(200);
    expect((await fetch(sdkImage.variants[0] ?? '')).status).toBe(403);
    await dialog.getByRole('checkbox', { name: 'Require signed URLs' }).uncheck();
    await expect.poll(async () => (await apiImage(sdkImage.id)).image?.requireSignedURLs).toBe(false);
  });

  it('deletes an image only after confirmation', async () => {
    const dialog = page.getByRole('dialog', { name: 'sdk-small.jpg' });
    page.once('dialog', (confirm) => void confirm.dismiss());
    await dialog.getByRole('button', { name: 'Delete' }).click();
    expect((await apiImage(sdkImage.id)).status).toBe(200);
    page.once('dialog', (confirm) => void confirm.accept());
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(async () => (await apiImage(sdkImage.id)).status).toBe(404);
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    expect(await page.getByRole('img', { name: 'sdk-small.jpg' }).count()).toBe(0);
  });

  it('creates, edits and deletes a variant, each change visible through the SDK', async () => {
    await page.getByRole('link', { name: 'Variants' }).click();
    await page.getByRole('heading', { name: 'Variants', level: 1 }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('thumb');
    await page.getByLabel('Width').fill('120');
    await page.getByLabel('Height').fill('90');
    await page.getByLabel('Fit').selectOption('cover');
    await page.getByLabel('Metadata').selectOption('none');
    await page.getByRole('button', { name: 'Create variant' }).click();
    await expect
      .poll(async () => (await cf.images.v1.variants.get('thumb', { account_id: t.accountId }).catch(() => undefined))?.variant?.options)
      .toMatchObject({ fit: 'cover', width: 120, height: 90, metadata: 'none' });
    await screenshot('variants');

    const row = page.getByRole('row', { name: /thumb/ });
    await row.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Width').fill('150');
    await page.getByRole('button', { name: 'Save variant' }).click();
    await expect.poll(async () => (await cf.images.v1.variants.get('thumb', { account_id: t.accountId })).variant?.options?.width).toBe(150);

    const refused = page.getByLabel('Name', { exact: true });
    await refused.fill('bad name!');
    await page.getByRole('button', { name: 'Create variant' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/code 5400/);

    page.once('dialog', (confirm) => void confirm.accept());
    await page.getByRole('row', { name: /thumb/ }).getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.getByRole('row', { name: /thumb/ }).count()).toBe(0);
    await expect(cf.images.v1.variants.get('thumb', { account_id: t.accountId })).rejects.toThrow();
  });

  it('turns flexible variants on and off', async () => {
    await page.getByRole('checkbox', { name: /Flexible variants/ }).check();
    await expect.poll(async () => (await (await fetch(`${t.imagesUrl}/v1/config`, { headers: t.auth })).json()) as { result: { flexible_variants: boolean } }).toMatchObject({ result: { flexible_variants: true } });
    await page.getByRole('img', { name: 'Variant preview' }).waitFor();
    // With flexible variants on, tiles are flexible thumbnails, except for images that require signed
    // URLs (flexible variants never apply to them): both kinds load.
    await cf.images.v1.create({ account_id: t.accountId, file: await Cloudflare.toFile(fixture('Landscape_5.jpg'), 'flexible-tile.jpg') });
    await cf.images.v1.create({ account_id: t.accountId, file: await Cloudflare.toFile(fixture('Landscape_6.jpg'), 'signed-tile.jpg'), requireSignedURLs: true });
    await page.getByRole('link', { name: 'Images' }).click();
    for (const name of ['flexible-tile.jpg', 'signed-tile.jpg']) {
      const tile = page.getByRole('img', { name });
      await expect.poll(() => tile.evaluate((img: { complete: boolean; naturalWidth: number }) => (img.complete ? img.naturalWidth : 0)), { message: name }).toBeGreaterThan(0);
    }
    expect(await page.getByRole('img', { name: 'flexible-tile.jpg' }).getAttribute('src')).toContain('/w=240,h=240,fit=cover');
    expect(await page.getByRole('img', { name: 'signed-tile.jpg' }).getAttribute('src')).toMatch(/\/public\?exp=\d+&sig=[0-9a-f]{64}$/);
    await page.getByRole('link', { name: 'Variants' }).click();
    // The switch shows the account's setting once it has loaded.
    await expect.poll(() => page.getByRole('checkbox', { name: /Flexible variants/ }).isChecked()).toBe(true);
    await page.getByRole('checkbox', { name: /Flexible variants/ }).uncheck();
    await expect.poll(async () => (await (await fetch(`${t.imagesUrl}/v1/config`, { headers: t.auth })).json()) as { result: { flexible_variants: boolean } }).toMatchObject({ result: { flexible_variants: false } });
  });

  it('adds and deletes a signing key, values hidden until revealed', async () => {
    await page.getByRole('link', { name: 'Signing keys' }).click();
    await page.getByRole('heading', { name: 'Signing keys' }).waitFor();
    await page.getByLabel('Key name').fill('rotation');
    await page.getByRole('button', { name: 'Add key' }).click();
    const row = page.getByRole('row', { name: /rotation/ });
    await row.waitFor();
    const keys = await cf.images.v1.keys.list({ account_id: t.accountId });
    const value = keys.keys?.find((key) => key.name === 'rotation')?.value ?? '';
    expect(value).not.toBe('');
    expect(await row.getByText(value).count()).toBe(0);
    await row.getByRole('button', { name: 'Reveal' }).click();
    expect(await row.getByText(value).count()).toBe(1);
    await screenshot('signing-keys');

    page.once('dialog', (confirm) => void confirm.accept());
    await row.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.getByRole('row', { name: /rotation/ }).count()).toBe(0);
    expect((await cf.images.v1.keys.list({ account_id: t.accountId })).keys?.map((key) => key.name)).not.toContain('rotation');
  });

  it('shows the server\'s rule when the last key is deleted: a new default key is made', async () => {
    const names = (await cf.images.v1.keys.list({ account_id: t.accountId })).keys?.map((key) => key.name);
    expect(names).toEqual(['default']);
    page.once('dialog', (confirm) => void confirm.accept());
    await page.getByRole('row', { name: /default/ }).getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: /new key named default/ }).count()).toBe(1);
    expect((await cf.images.v1.keys.list({ account_id: t.accountId })).keys?.map((key) => key.name)).toEqual(['default']);
  });

  it('filters by creator and by one metadata condition, and switches the sort order', async () => {
    await cf.images.v1.create({ account_id: t.accountId, file: await Cloudflare.toFile(fixture('Landscape_4.jpg'), 'by-alice.jpg'), creator: 'alice', metadata: { team: 'red' } });
    await page.getByRole('link', { name: 'Images' }).click();
    await page.getByRole('img', { name: 'by-alice.jpg' }).waitFor();
    const tiles = page.getByRole('list', { name: 'Images' }).getByRole('listitem');

    await page.getByLabel('Creator').fill('alice');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => tiles.count()).toBe(1);
    await page.getByLabel('Creator').fill('');
    await page.getByLabel('Metadata key').fill('team');
    await page.getByLabel('Metadata value').fill('red');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => tiles.count()).toBe(1);
    expect(await tiles.getByRole('img', { name: 'by-alice.jpg' }).count()).toBe(1);
    await page.getByLabel('Metadata key').fill('');
    await page.getByLabel('Metadata value').fill('');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => tiles.count()).toBeGreaterThan(1);

    // Newest first by default; oldest first puts the first SDK upload at the top.
    await expect.poll(() => tiles.first().getByRole('img').getAttribute('alt')).toBe('by-alice.jpg');
    await page.getByLabel('Sort order').selectOption({ label: 'Oldest first' });
    await expect.poll(() => tiles.first().getByRole('img').getAttribute('alt')).toBe('sdk-landscape.jpg');
    await page.getByLabel('Sort order').selectOption({ label: 'Newest first' });
  });

  it('loads more images as the end of the grid scrolls into view (v2 continuation tokens)', async () => {
    const tiny = fixture('with-alpha.png');
    for (let i = 0; i < 50; i++) {
      const form = new FormData();
      form.append('file', new File([tiny], `bulk-${String(i).padStart(2, '0')}.png`));
      expect((await fetch(`${t.imagesUrl}/v1`, { method: 'POST', body: form, headers: t.auth })).status).toBe(200);
    }
    await page.reload();
    const tiles = page.getByRole('list', { name: 'Images' }).getByRole('listitem');
    await expect.poll(() => tiles.count()).toBe(50);
    await page.getByRole('button', { name: 'Load more images' }).scrollIntoViewIfNeeded();
    await expect.poll(() => tiles.count()).toBe((await apiImages()).length);
    expect(await tiles.count()).toBeGreaterThan(50);
    expect(await page.getByRole('button', { name: 'Load more images' }).count()).toBe(0);
  });

  it('adds a webhook that receives direct upload events, shows its deliveries, and deletes it', async () => {
    const receiver = await startReceiver();
    const account = { account_id: t.accountId };
    try {
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
      await page.getByLabel('Webhook name').fill('app backend');
      await page.getByLabel('Webhook URL').fill(receiver.url);
      await page.getByLabel('Secret (optional)').fill('dash-secret');
      await page.getByRole('button', { name: 'Add webhook' }).click();
      const row = page.getByRole('row', { name: /app backend/ });
      await row.waitFor();
      expect(await row.getByRole('cell', { name: 'Sent', exact: true }).count()).toBe(1);
      // The test message reached the receiver; the destination and an enabled Images policy exist.
      expect(receiver.received[0]?.headers['cf-webhook-auth']).toBe('dash-secret');
      const hooks = [];
      for await (const hook of cf.alerting.destinations.webhooks.list(account)) hooks.push(hook);
      expect(hooks).toMatchObject([{ name: 'app backend', url: receiver.url }]);
      const policies = [];
      for await (const policy of cf.alerting.policies.list(account)) policies.push(policy);
      expect(policies).toMatchObject([{ alert_type: 'image_notification', enabled: true, mechanisms: { webhooks: [{ id: hooks[0]?.id }] } }]);

      const minted = await cf.images.v2.directUploads.create(account);
      const form = new FormData();
      form.append('file', new File([fixture('320x240.jpg')], 'hooked.jpg'));
      expect((await fetch(minted.uploadURL as string, { method: 'POST', body: form })).status).toBe(200);
      await expect.poll(() => receiver.events().map((e) => e.body.data?.image_id)).toEqual([minted.id]);
      await row.getByRole('button', { name: 'Deliveries' }).click();
      await page.getByRole('table', { name: /Last deliveries to app backend/ }).getByText('HTTP 200').waitFor();
      await screenshot('webhooks');

      page.once('dialog', (confirm) => void confirm.accept());
      await row.getByRole('button', { name: 'Delete' }).click();
      await expect.poll(() => page.getByRole('row', { name: /app backend/ }).count()).toBe(0);
      const left = [];
      for await (const hook of cf.alerting.destinations.webhooks.list(account)) left.push(hook);
      expect(left).toEqual([]);
      const rules = [];
      for await (const policy of cf.alerting.policies.list(account)) rules.push(policy);
      expect(rules).toEqual([]);
    } finally {
      await receiver.close();
    }
  });

  it('signs out: the token is forgotten and the sign-in form is back', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    expect(await page.evaluate('JSON.stringify(sessionStorage)')).not.toContain(t.token);
    await page.reload();
    await page.getByLabel('API token').waitFor();
  });

  it('sent no request to another origin and logged no console error', () => {
    expect(foreignRequests).toEqual([]);
    // A refused sign-in and refused API calls are answered 4xx, which Chromium logs as failed loads.
    expect(consoleErrors.filter((text) => !/status of 4\d\d/.test(text))).toEqual([]);
  });
});

describe('dashboard switch', () => {
  it('PICTOR_DASHBOARD=false serves no dashboard', async () => {
    const t = await startTestServer({ PICTOR_DASHBOARD: 'false' });
    try {
      const res = await fetch(`${t.url}/dashboard`);
      expect(res.status).toBe(404);
    } finally {
      await t.stop();
    }
  });
});
