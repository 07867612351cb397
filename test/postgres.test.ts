/**
 * What only a database shared by many connections (and nodes) shows: races that one SQLite writer hid,
 * 1,024-character ids of 4-byte UTF-8, migrations and first start by several processes at once, and the
 * metadata-filter semantics compared case by case between the embedded store and PostgreSQL.
 * Runs in the `postgres` test project only (see vitest.config.ts).
 */
import fs from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import type { ImageRecord, MetaFilter } from '../src/domain/model.js';
import { parseMetaFilters } from '../src/domain/meta-filter.js';
import { startServer } from '../src/server.js';
import { openStores } from '../src/store/open.js';
import { openPostgresMetaStore } from '../src/store/meta/postgres.js';
import { openSqliteMetaStore } from '../src/store/meta/sqlite.js';
import type { MetaStore } from '../src/store/ports.js';
import { expectOk, getStats, type ImageResult } from './helpers/api.js';
import { jsonRequest } from './helpers/delivery.js';
import { cliOk } from './helpers/cli.js';
import { createTestDatabase } from './helpers/postgres.js';
import { fixture, randomAccountId, startTestServer, tempDir, type TestServer, upload, useServer } from './helpers/server.js';

function tinyFile(name = 'a.jpg'): File {
  return new File([fixture('320x240.jpg')], name);
}

describe('several processes starting on one empty database', () => {
  it('three stores migrating at once: every one opens, each migration is recorded once', async () => {
    const database = await createTestDatabase();
    const stores = await Promise.all(
      Array.from({ length: 3 }, () => openPostgresMetaStore({ url: database.url, poolSize: 3, migrate: true })),
    );
    const probe = await openPostgresMetaStore({ url: database.url, poolSize: 1, migrate: false });
    // The migrations table is Kysely's; read it through a plain count of what the store can see.
    expect(await probe.listAccounts()).toEqual([]);
    await Promise.all([...stores, probe].map((s) => s.close()));
    const pg = await import('pg');
    const client = new pg.default.Client({ connectionString: database.url });
    await client.connect();
    const { rows } = await client.query<{ name: string }>('select name from pictor_migrations order by name');
    await client.end();
    expect(rows.map((r) => r.name)).toEqual(['0001_initial', '0002_direct_upload_lease', '0003_change_notifications', '0004_batch_tokens', '0005_webhooks']);
  });

  it('three servers with the same bootstrap account start at once: all ready, one account, the token works on each', async () => {
    const database = await createTestDatabase();
    const accountId = randomAccountId();
    const token = `token-${accountId}`;
    const servers = await Promise.all(
      Array.from({ length: 3 }, () =>
        startServer(
          loadConfig({
            HOST: '127.0.0.1',
            PORT: '0',
            PICTOR_LOG_LEVEL: 'warn',
            PICTOR_DATA_DIR: tempDir(),
            PICTOR_DATABASE_URL: database.url,
            PICTOR_BOOTSTRAP_ACCOUNT_ID: accountId,
            PICTOR_BOOTSTRAP_TOKEN: token,
          }),
        ),
      ),
    );
    try {
      for (const server of servers) {
        const res = await fetch(`${server.url}/client/v4/accounts/${accountId}/images/v1/stats`, { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(200);
      }
      const store = await openPostgresMetaStore({ url: database.url, poolSize: 1, migrate: false });
      expect((await store.listAccounts()).map((a) => a.id)).toEqual([accountId]);
      await store.close();
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });

  it('three first-run servers (no bootstrap) on an empty database create one account between them', async () => {
    const database = await createTestDatabase();
    const servers = await Promise.all(
      Array.from({ length: 3 }, () =>
        startServer(loadConfig({ HOST: '127.0.0.1', PORT: '0', PICTOR_LOG_LEVEL: 'warn', PICTOR_DATA_DIR: tempDir(), PICTOR_DATABASE_URL: database.url })),
      ),
    );
    try {
      expect(servers.filter((s) => s.firstRun !== undefined)).toHaveLength(1);
      const store = await openPostgresMetaStore({ url: database.url, poolSize: 1, migrate: false });
      expect(await store.listAccounts()).toHaveLength(1);
      await store.close();
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });

  it('a schema a newer node of the same major migrated further is used as is; a newer major is refused', async () => {
    const database = await createTestDatabase();
    await (await openPostgresMetaStore({ url: database.url, poolSize: 2, migrate: true })).close();
    const pg = await import('pg');
    const client = new pg.default.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query("insert into pictor_migrations (name, timestamp) values ('0099_future_column', now()::text)");
      const store = await openPostgresMetaStore({ url: database.url, poolSize: 2, migrate: true });
      expect(await store.listAccounts()).toEqual([]);
      await store.close();
      await client.query("insert into pictor_migrations (name, timestamp) values ('2.0001_rename_everything', now()::text)");
      await expect(openPostgresMetaStore({ url: database.url, poolSize: 2, migrate: true })).rejects.toThrow(/newer Pictor.*upgrade/);
    } finally {
      await client.end();
    }
  });

  it('an unreachable database stops the start with a message naming PICTOR_DATABASE_URL', async () => {
    const config = loadConfig({ PICTOR_DATA_DIR: tempDir(), PICTOR_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', PORT: '0' });
    await expect(startServer(config)).rejects.toThrow(/PICTOR_DATABASE_URL/);
  });
});

describe('two nodes on one database', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startTestServer();
    // The second node: same database, same originals directory (a shared volume), its own process state.
    b = await startTestServer({ ...a.storeEnv, PICTOR_BOOTSTRAP_ACCOUNT_ID: a.accountId, PICTOR_BOOTSTRAP_TOKEN: a.token });
  });
  afterAll(async () => {
    await b.stop();
    await a.stop();
  });

  const on = (t: TestServer, path: string): string => `${t.url}${path}`;

  it('an upload on one node is read, listed and delivered by the other', async () => {
    const image = await expectOk<ImageResult>(await upload(a, { file: tinyFile() }));
    expect((await expectOk<ImageResult>(await fetch(`${b.imagesUrl}/v1/${image.id}`, { headers: b.auth }))).id).toBe(image.id);
    const list = await expectOk<{ images: ImageResult[] }>(await fetch(`${b.imagesUrl}/v2`, { headers: b.auth }));
    expect(list.images.map((i) => i.id)).toContain(image.id);
    const delivered = await fetch(on(b, new URL(image.variants[0] as string).pathname));
    expect(delivered.status).toBe(200);
  });

  it('requireSignedURLs set on one node: the other, which had just served the image, refuses it at once', async () => {
    const image = await expectOk<ImageResult>(await upload(a, { file: tinyFile() }));
    const path = new URL(image.variants[0] as string).pathname;
    // Several rounds: the other node must never answer from what it remembered before the write.
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 3; i++) expect((await fetch(on(b, path))).status).toBe(200);
      await expectOk(await jsonRequest(a, 'PATCH', `/v1/${image.id}`, { requireSignedURLs: true }));
      const refused = await fetch(on(b, path));
      expect(refused.status).toBe(403);
      expect(refused.headers.get('cf-resized')).toBe('err=9425');
      await expectOk(await jsonRequest(a, 'PATCH', `/v1/${image.id}`, { requireSignedURLs: false }));
    }
  });

  it('a delete on one node: the other answers 404 at once', async () => {
    const image = await expectOk<ImageResult>(await upload(a, { file: tinyFile() }));
    const path = new URL(image.variants[0] as string).pathname;
    expect((await fetch(on(b, path))).status).toBe(200);
    await expectOk(await fetch(`${a.imagesUrl}/v1/${image.id}`, { method: 'DELETE', headers: a.auth }));
    expect((await fetch(on(b, path))).status).toBe(404);
  });

  it('a variant edited on one node: the other serves the new size', async () => {
    await expectOk(await jsonRequest(a, 'POST', '/v1/variants', { id: 'thumb', options: { fit: 'scale-down', width: 100 } }));
    const image = await expectOk<ImageResult>(await upload(a, { file: tinyFile() }));
    const path = new URL(image.variants[0] as string).pathname.replace(/\/public$/, '/thumb');
    const widthOf = async (res: Response): Promise<number | undefined> => (await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width;
    for (const width of [100, 50, 80, 40, 100]) {
      await expectOk(await jsonRequest(a, 'PATCH', '/v1/variants/thumb', { options: { fit: 'scale-down', width } }));
      expect(await widthOf(await fetch(on(b, path)))).toBe(width);
    }
  });

  it('one direct-upload URL posted to both nodes at once: exactly one 200', async () => {
    for (let round = 0; round < 3; round++) {
      const minted = await expectOk<{ id: string; uploadURL: string }>(await fetch(`${a.imagesUrl}/v2/direct_upload`, { method: 'POST', headers: a.auth }));
      const path = new URL(minted.uploadURL).pathname;
      const post = (t: TestServer): Promise<Response> => {
        const form = new FormData();
        form.append('file', tinyFile());
        return fetch(on(t, path), { method: 'POST', body: form });
      };
      const answers = await Promise.all([post(a), post(b), post(a), post(b)]);
      expect(answers.map((r) => r.status).sort()).toEqual([200, 409, 409, 409]);
    }
  });

  it('one custom id uploaded on both nodes at once: one 200, one 409', async () => {
    for (let round = 0; round < 3; round++) {
      const id = `raced/${round}`;
      const answers = await Promise.all([upload(a, { file: tinyFile(), id }), upload(b, { file: tinyFile(), id })]);
      expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
    }
  });

  it('stats are exact after concurrent uploads on both nodes', async () => {
    const before = (await getStats(a)).current;
    await Promise.all(Array.from({ length: 12 }, (_, i) => upload(i % 2 === 0 ? a : b, { file: tinyFile() }).then(expectOk)));
    expect((await getStats(b)).current).toBe(before + 12);
  });
});

describe('pictor migrate and pictor gc on the shared stores', () => {
  const h = useServer();

  it('`pictor migrate` brings an empty database up to date; a node with PICTOR_MIGRATE=off then starts on it', async () => {
    const database = await createTestDatabase();
    const done = await cliOk(['migrate'], { PICTOR_DATA_DIR: tempDir(), PICTOR_DATABASE_URL: database.url, PICTOR_LOG_LEVEL: 'warn' });
    expect(done.stdout).toMatch(/up to date/);
    const server = await startServer(
      loadConfig({ HOST: '127.0.0.1', PORT: '0', PICTOR_LOG_LEVEL: 'warn', PICTOR_DATA_DIR: tempDir(), PICTOR_DATABASE_URL: database.url, PICTOR_MIGRATE: 'off' }),
    );
    await server.close();
  });

  it('`pictor gc` removes an orphan original past the grace period and nothing an image uses', async () => {
    const t = h.t;
    const image = await expectOk<ImageResult>(await upload(t, { file: tinyFile() }));
    // An original no row points at, as an upload interrupted between its bytes and its row leaves.
    const stores = await openStores(loadConfig(t.storeEnv));
    try {
      await stores.blobs.put(`${t.accountId}/orphan`, Buffer.from('lost'));
      const kept = await cliOk(['gc'], { ...t.storeEnv, PICTOR_LOG_LEVEL: 'warn' });
      expect(kept.stdout).toMatch(/removed 0 orphan/);
      const swept = await cliOk(['gc', '--grace', '0'], { ...t.storeEnv, PICTOR_LOG_LEVEL: 'warn' });
      expect(swept.stdout).toMatch(/removed 1 orphan/);
      expect(await stores.blobs.get(`${t.accountId}/orphan`)).toBeUndefined();
    } finally {
      await stores.close();
    }
    const blob = await fetch(`${t.imagesUrl}/v1/${image.id}/blob`, { headers: t.auth });
    expect(blob.status).toBe(200);
  });
});

/**
 * The same filters through the embedded store and PostgreSQL must find the same images. Numbers written
 * in text count only in plain decimal notation (`12`, `-3.5`): hex, exponents and padding are text.
 */
describe('metadata filters: the embedded store and PostgreSQL agree', () => {
  const accountId = randomAccountId();
  const stores: Record<'sqlite' | 'postgres', MetaStore> = {} as Record<'sqlite' | 'postgres', MetaStore>;
  const dirs: string[] = [];

  const metas: Record<string, Record<string, unknown>> = {
    num: { n: 12, s: 'alpha', b: true, nested: { deep: { x: 1 } } },
    numText: { n: '12', s: 'beta', b: 'true' },
    negative: { n: -3.5, s: 'gamma', b: false },
    hex: { n: '0x10', s: '16' },
    exponent: { n: '1e3', s: 'delta' },
    padded: { n: ' 7 ', s: 'eps' },
    big: { n: 9007199254740993, s: 'big' },
    nullValue: { n: null, s: null },
    array: { n: [1, 2], nested: [{ deep: { x: 1 } }] },
    objectValue: { n: { v: 1 }, s: { v: 'alpha' } },
    emptyMeta: {},
    boolText: { b: 'false', s: 'true' },
  };

  const cases: string[] = [
    'meta.n[eq]=12',
    'meta.n[eq:number]=12',
    'meta.n[eq:string]=12',
    'meta.n[gt]=0',
    'meta.n[gte]=-3.5',
    'meta.n[lt]=100',
    'meta.n[lte]=12',
    'meta.n[eq]=16',
    'meta.n[gt]=10',
    'meta.n[eq:string]=0x10',
    'meta.n[eq:string]=1e3',
    'meta.n[in]=12|-3.5|0x10',
    'meta.n[in:number]=12|7',
    'meta.n[in:string]=1e3| 7 ',
    'meta.s[eq]=alpha',
    'meta.s[in:string]=alpha|beta|16',
    'meta.s[eq]=true',
    'meta.b[eq:boolean]=true',
    'meta.b[eq:boolean]=false',
    'meta.b[eq]=true',
    'meta.nested.deep.x[eq]=1',
    'meta.nested.deep.x[gt]=0',
    'meta.n.v[eq]=1',
    'meta.s.v[eq:string]=alpha',
    'meta.n[eq]=9007199254740992',
    'meta.missing[eq]=1',
    'meta.n[gt]=1&meta.s[eq]=alpha',
    'meta.n[eq:number]=0012',
  ];

  beforeAll(async () => {
    const dir = tempDir();
    dirs.push(dir);
    stores.sqlite = await openSqliteMetaStore(dir);
    const database = await createTestDatabase();
    stores.postgres = await openPostgresMetaStore({ url: database.url, poolSize: 2, migrate: true });
    for (const store of Object.values(stores)) {
      const now = Date.now();
      await store.createAccount(
        { id: accountId, hash: `hash-${accountId}`.slice(0, 22), createdAt: now, flexibleVariants: false, browserTtl: 3600 },
        {
          variant: { accountId, name: 'public', options: { fit: 'scale-down', width: 10, metadata: 'none' }, neverRequireSignedUrls: false, version: 1 },
          signingKey: { accountId, name: 'default', value: 'k', createdAt: now },
        },
      );
      let at = now;
      for (const [id, meta] of Object.entries(metas)) {
        const image: ImageRecord = {
          accountId, id, filename: `${id}.jpg`, creator: null, meta, requireSignedUrls: false, uploadedAt: at++, draft: false,
          blobKey: `k/${id}`, contentType: 'image/jpeg', size: 1, sha256: 'x', width: 1, height: 1, frames: 1, version: 1,
        };
        await store.insertImage(image, 1000);
      }
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(stores).map((s) => s.close()));
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function idsFor(store: MetaStore, meta: MetaFilter[]): Promise<string[]> {
    const rows = await store.listImagesAfter(accountId, { meta }, 'asc', undefined, 100);
    return rows.map((r) => r.id).sort();
  }

  it.each(cases)('%s', async (query) => {
    const meta = parseMetaFilters(new URLSearchParams(query).entries());
    const embedded = await idsFor(stores.sqlite, meta);
    expect(await idsFor(stores.postgres, meta)).toEqual(embedded);
  });

  it('pins the narrowed number rule: hex, exponent and padded text are never numbers', async () => {
    const meta = parseMetaFilters(new URLSearchParams('meta.n[gt]=-1000000').entries());
    const found = await idsFor(stores.postgres, meta);
    expect(found).toEqual(['big', 'negative', 'num', 'numText']);
    expect(await idsFor(stores.sqlite, meta)).toEqual(found);
  });
});
