/**
 * The bulk CLI (`pictor upload`, `import cloudflare`, `export`) run as a real process against real
 * servers. The Cloudflare import is run against a second Pictor acting as the source: the API is
 * wire-compatible, so it is what the command sees of Cloudflare. Everything is checked through the API.
 */
import { spawn } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageResult } from './helpers/api.js';
import { cleanEnv, cliOk, killGroup, lastLine, PROJECT_ROOT, runCli } from './helpers/cli.js';
import { fixture, startTestServer, tempDir, type TestServer } from './helpers/server.js';

type ApiImage = ImageResult;

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

async function api<T>(t: TestServer, pathAndQuery: string, init: RequestInit = {}, auth = t.auth): Promise<T> {
  const res = await fetch(`${t.imagesUrl}${pathAndQuery}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } });
  const body = (await res.json()) as { success: boolean; result: T; errors: unknown[] };
  if (!body.success) throw new Error(`${pathAndQuery}: ${JSON.stringify(body.errors)}`);
  return body.result;
}

async function allImages(t: TestServer): Promise<ApiImage[]> {
  return (await api<{ images: ApiImage[] }>(t, '/v2?per_page=1000&sort_order=asc')).images;
}

async function blobSha(t: TestServer, id: string): Promise<string> {
  const res = await fetch(`${t.imagesUrl}/v1/${encodeURIComponent(id)}/blob`, { headers: t.auth });
  return sha256(Buffer.from(await res.arrayBuffer()));
}

async function uploadTo(t: TestServer, name: string, fields: Record<string, string> = {}): Promise<ApiImage> {
  const form = new FormData();
  form.append('file', new File([fixture(name)], name));
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  return api<ApiImage>(t, '/v1', { method: 'POST', body: form });
}

/** The connection of `t` as the SDK's environment variables. */
function connectionEnv(t: TestServer, token = t.token): Record<string, string> {
  return { PICTOR_API_URL: `${t.url}/client/v4`, CLOUDFLARE_ACCOUNT_ID: t.accountId, CLOUDFLARE_API_TOKEN: token };
}

async function importToken(t: TestServer): Promise<string> {
  return lastLine((await cliOk(['token', 'create', '--account', t.accountId, '--permission', 'images:import'], t.storeEnv)).stdout);
}

/** A folder of mixed files: three images (one with a metadata sidecar), a text file, a nested folder. */
function mixedFolder(): string {
  const dir = tempDir('pictor-cli-folder-');
  fs.mkdirSync(path.join(dir, 'sub/deeper'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a.jpg'), fixture('Landscape_1.jpg'));
  fs.writeFileSync(path.join(dir, 'a.jpg.json'), JSON.stringify({ album: 'summer' }));
  fs.writeFileSync(path.join(dir, 'sub/b.png'), fixture('with-alpha.png'));
  fs.writeFileSync(path.join(dir, 'sub/deeper/c.webp'), fixture('4.webp'));
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not an image\n');
  fs.writeFileSync(path.join(dir, 'sub/readme.md'), '# readme\n');
  return dir;
}

describe('pictor upload', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t.stop();
  });

  it('without credentials, or with a refused token, says so in one line and exits 2 before any work', async () => {
    const folder = mixedFolder();
    const missing = await runCli(['upload', folder], {});
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/--url.*--account.*--token/);
    const refused = await runCli(['upload', folder], connectionEnv(t, 'not-a-valid-token-0000000'));
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain('code 10000');
    expect(await allImages(t)).toEqual([]);
  });

  it('--dry-run lists what it would upload and changes nothing', async () => {
    const result = await runCli(['upload', mixedFolder(), '--dry-run', '--id-from-path'], connectionEnv(t));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('would upload 3, already there 0, skipped 2 (not images), failed 0');
    expect(await allImages(t)).toEqual([]);
  });

  it('uploads every image of a folder tree (with generated ids), lists the rest as skipped, adds sidecar metadata', async () => {
    const folder = mixedFolder();
    const result = await runCli(['upload', folder, '--metadata', '{"batch":"one"}', '--creator', 'cli'], connectionEnv(t));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`skipped (not an image): ${path.join(folder, 'notes.txt')}`);
    expect(result.stdout).toContain(`skipped (not an image): ${path.join(folder, 'sub/readme.md')}`);
    expect(result.stdout).toContain('uploaded 3, already there 0, skipped 2 (not images), failed 0');
    const images = await allImages(t);
    expect(images.map((image) => image.filename).sort()).toEqual(['a.jpg', 'b.png', 'c.webp']);
    expect(images.every((image) => image.creator === 'cli')).toBe(true);
    expect(images.find((image) => image.filename === 'a.jpg')?.meta).toEqual({ batch: 'one', album: 'summer' });
    expect(images.find((image) => image.filename === 'b.png')?.meta).toEqual({ batch: 'one' });
    for (const image of images) expect(image.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('--id-from-path keeps paths as ids; an interrupted run resumes, skipping what is there', async () => {
    const folder = mixedFolder();
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(folder, `sub/extra-${i}.jpg`), fixture('320x240.jpg'));
    // The first run is killed once it has uploaded something.
    const child = spawn(path.join(PROJECT_ROOT, 'node_modules/.bin/tsx'), ['src/cli/main.ts', 'upload', folder, '--id-from-path', '--concurrency', '1'], {
      cwd: PROJECT_ROOT,
      env: cleanEnv(connectionEnv(t)),
      detached: true,
    });
    await new Promise<void>((resolve) => {
      let log = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        log += chunk;
        if (log.includes('uploaded: ')) {
          killGroup(child, 'SIGKILL'); // tsx and the node process it runs
          resolve();
        }
      });
      child.on('exit', () => resolve());
    });
    // An upload the server was already taking when the client died may still land: let it.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const partial = (await allImages(t)).filter((image) => !/^[0-9a-f-]{36}$/.test(image.id));
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(9);

    const resumed = await runCli(['upload', folder, '--id-from-path'], connectionEnv(t));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`uploaded ${9 - partial.length}, already there ${partial.length}`);
    const ids = (await allImages(t)).map((image) => image.id).filter((id) => !/^[0-9a-f-]{36}$/.test(id));
    expect(ids.sort()).toEqual(['a.jpg', 'sub/b.png', 'sub/deeper/c.webp', ...Array.from({ length: 6 }, (_, i) => `sub/extra-${i}.jpg`)].sort());
    expect(await blobSha(t, 'sub/deeper/c.webp')).toBe(sha256(fixture('4.webp')));

    const again = await runCli(['upload', folder, '--id-from-path'], connectionEnv(t));
    expect(again.stdout).toContain('uploaded 0, already there 9');
  });

  it('a file the server refuses is reported with its code, the others still upload, and the exit status is 1', async () => {
    const folder = tempDir('pictor-cli-bad-');
    fs.writeFileSync(path.join(folder, 'good.png'), fixture('with-alpha.png'));
    fs.writeFileSync(path.join(folder, 'broken.jpg'), fixture('corrupt-header.jpg'));
    const result = await runCli(['upload', folder], connectionEnv(t));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/uploaded 1, already there 0, skipped 0 \(not images\), failed 1/);
    expect(result.stdout).toMatch(new RegExp(`FAILED ${path.join(folder, 'broken.jpg').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*\\(code \\d+\\)`));
  });

  it.runIf(fs.existsSync('/usr/bin/script'))('draws a progress bar (files, bytes, rate, ETA) on a terminal', async () => {
    const folder = mixedFolder();
    // util-linux `script` runs the command on a pseudo-terminal, as a user's shell would.
    const command = [path.join(PROJECT_ROOT, 'node_modules/.bin/tsx'), 'src/cli/main.ts', 'upload', folder, '--dry-run'].map((part) => `'${part}'`).join(' ');
    const output = await new Promise<string>((resolve) => {
      const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: PROJECT_ROOT, env: cleanEnv(connectionEnv(t)) });
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      child.on('close', () => resolve(text));
    });
    expect(output).toMatch(/\r.*\[#+\.*\] 3\/3 files +[\d.]+ MB\/[\d.]+ MB +[\d.]+ MB\/s +ETA/);
    expect(output).not.toContain('would upload: ');
  });

  it.runIf(fs.existsSync(path.join(PROJECT_ROOT, 'dist/cli/main.js')))('works through the package bin (bin/pictor.js)', async () => {
    const folder = tempDir('pictor-cli-bin-');
    fs.writeFileSync(path.join(folder, 'bin-test.png'), fixture('with-alpha.png'));
    const result = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, ['bin/pictor.js', 'upload', folder, '--url', `${t.url}/client/v4`, '--account', t.accountId, '--token', t.token], {
        cwd: PROJECT_ROOT,
        env: cleanEnv({}),
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.on('close', (code) => resolve({ code, stdout }));
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('uploaded 1');
  });
});

describe('pictor import cloudflare and pictor export / upload --manifest', () => {
  let source: TestServer;
  let target: TestServer;
  let restored: TestServer;
  let sourceImages: ApiImage[];
  let signedImage: ApiImage;
  let secondKey: string;

  beforeAll(async () => {
    [source, target, restored] = await Promise.all([startTestServer(), startTestServer(), startTestServer()]);
    await uploadTo(source, 'Landscape_2.jpg', { id: 'albums/2020/beach', metadata: JSON.stringify({ place: 'beach', n: 1 }), creator: 'alice' });
    signedImage = await uploadTo(source, 'Landscape_3.jpg', { requireSignedURLs: 'true', metadata: JSON.stringify({ private: true }) });
    await uploadTo(source, 'with-alpha.png', { creator: 'bob' });
    await uploadTo(source, 'check.svg');
    await api(source, '/v1/variants', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'thumb', options: { fit: 'cover', width: 120, height: 90, metadata: 'none' }, neverRequireSignedURLs: true }) });
    const keys = await api<{ keys: Array<{ name: string; value: string }> }>(source, '/v1/keys/second', { method: 'PUT' });
    secondKey = keys.keys.find((key) => key.name === 'second')?.value ?? '';
    await api(source, '/v1/config', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ flexible_variants: true }) });
    sourceImages = await allImages(source);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop(), restored?.stop()]);
  });

  /** The target holds the source's account: ids, bytes, attributes, times, variants, keys, settings. */
  async function expectSameAccount(copy: TestServer): Promise<void> {
    const copied = await allImages(copy);
    const strip = (image: ApiImage): unknown => ({ id: image.id, filename: image.filename, uploaded: image.uploaded, requireSignedURLs: image.requireSignedURLs, meta: image.meta, creator: image.creator });
    expect(copied.map(strip)).toEqual(sourceImages.map(strip));
    for (const image of sourceImages) expect(await blobSha(copy, image.id), image.id).toBe(await blobSha(source, image.id));
    const variants = await api<{ variants: Record<string, unknown> }>(copy, '/v1/variants');
    expect(variants.variants.thumb).toEqual({ id: 'thumb', options: { fit: 'cover', width: 120, height: 90, metadata: 'none' }, neverRequireSignedURLs: true });
    const sourceKeys = await api<{ keys: unknown[] }>(source, '/v1/keys');
    expect((await api<{ keys: unknown[] }>(copy, '/v1/keys')).keys).toEqual(sourceKeys.keys);
    expect(await api(copy, '/v1/config')).toMatchObject({ flexible_variants: true });

    // A URL signed with the source's key for the copy's address is served by the copy.
    const copiedSigned = copied.find((image) => image.id === signedImage.id);
    const url = new URL(copiedSigned?.variants.find((variant) => variant.endsWith('/public')) ?? '');
    expect((await fetch(url)).status).toBe(403);
    url.searchParams.set('exp', String(Math.floor(Date.now() / 1000) + 600));
    url.searchParams.set('sig', createHmac('sha256', secondKey).update(`${url.pathname}?${url.searchParams.toString()}`).digest('hex'));
    expect((await fetch(url)).status).toBe(200);
  }

  it('refuses a target token without images:import, with what to do', async () => {
    const result = await runCli(
      ['import', 'cloudflare', '--from-url', `${source.url}/client/v4`, '--from-account', source.accountId, '--from-token', source.token],
      connectionEnv(target),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--permission images:import');
  });

  it('copies the whole account, and a second run copies nothing and exits 0', async () => {
    const token = await importToken(target);
    const args = ['import', 'cloudflare', '--from-url', `${source.url}/client/v4`, '--from-account', source.accountId, '--from-token', source.token];
    const first = await runCli(args, connectionEnv(target, token), 60_000);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`images: copied ${sourceImages.length}, updated 0, unchanged 0, failed 0`);
    await expectSameAccount(target);

    const second = await runCli(args, connectionEnv(target, token), 60_000);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`images: copied 0, updated 0, unchanged ${sourceImages.length}, failed 0; variants: created 0, updated 0; signing keys set: 0`);
  });

  it('brings over what changed since: edited attributes are patched', async () => {
    const token = await importToken(target);
    await api(source, `/v1/${encodeURIComponent('albums/2020/beach')}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ metadata: { place: 'dunes' } }) });
    sourceImages = await allImages(source);
    const result = await runCli(['import', 'cloudflare', '--from-url', `${source.url}/client/v4`, '--from-account', source.accountId, '--from-token', source.token], connectionEnv(target, token), 60_000);
    expect(result.stdout).toContain(`images: copied 0, updated 1, unchanged ${sourceImages.length - 1}`);
    await expectSameAccount(target);
  });

  it('exports to a folder and restores it into a fresh server', async () => {
    const folder = tempDir('pictor-export-');
    const exported = await runCli(['export', folder], connectionEnv(source), 60_000);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain(`exported ${sourceImages.length}, already in the folder 0, failed 0`);
    expect(fs.readFileSync(path.join(folder, 'images/albums/2020/beach.jpg')).equals(fixture('Landscape_2.jpg'))).toBe(true);
    const manifest = JSON.parse(fs.readFileSync(path.join(folder, 'manifest.json'), 'utf8')) as { images: Array<{ id: string; sha256: string }> };
    expect(manifest.images.find((image) => image.id === 'albums/2020/beach')?.sha256).toBe(sha256(fixture('Landscape_2.jpg')));

    const again = await runCli(['export', folder], connectionEnv(source), 60_000);
    expect(again.stdout).toContain(`exported 0, already in the folder ${sourceImages.length}, failed 0`);

    const token = await importToken(restored);
    const restore = await runCli(['upload', '--manifest', path.join(folder, 'manifest.json')], connectionEnv(restored, token), 60_000);
    expect(restore.code, restore.stderr).toBe(0);
    await expectSameAccount(restored);
  });
  it('reports a source image that cannot be read and copies the rest (exit status 1)', async () => {
    // The original of one source image goes missing from the source's disk.
    const missing = fixture('with-alpha.png');
    const files = fs.readdirSync(source.dataDir, { recursive: true, encoding: 'utf8' }).map((name) => path.join(source.dataDir, name));
    const victim = files.find((file) => fs.statSync(file).isFile() && fs.readFileSync(file).equals(missing));
    expect(victim).toBeDefined();
    fs.rmSync(victim ?? '');
    const target = await startTestServer();
    try {
      const token = await importToken(target);
      const result = await runCli(['import', 'cloudflare', '--from-url', `${source.url}/client/v4`, '--from-account', source.accountId, '--from-token', source.token], connectionEnv(target, token), 60_000);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`images: copied ${sourceImages.length - 1}, updated 0, unchanged 0, failed 1`);
      expect(result.stdout).toMatch(/FAILED \S+: cannot read the source/);
      expect((await allImages(target)).length).toBe(sourceImages.length - 1);
    } finally {
      await target.stop();
    }
  });
});
