/**
 * Three `pictor serve` processes on one PostgreSQL database and one S3 bucket, started together on an
 * empty database, as a load balancer would spread clients over them. Runs in the `s3` project only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { expectOk, type ImageResult } from './helpers/api.js';
import { type ChildServer, killAllChildServers, spawnServer } from './helpers/child-server.js';
import { createTestDatabase } from './helpers/postgres.js';
import { createTestBucket, s3Env } from './helpers/s3.js';
import { fixture, randomAccountId, tempDir } from './helpers/server.js';

interface Node {
  server: ChildServer;
  imagesUrl: string;
}

describe('start-up checks of the shared stores', () => {
  it('a bucket that does not exist stops the start with a message naming PICTOR_STORAGE_URL', async () => {
    const database = await createTestDatabase();
    const env = { ...s3Env('pictor-no-such-bucket'), PICTOR_DATABASE_URL: database.url, PICTOR_DATA_DIR: tempDir(), PORT: '0' };
    await expect(startServer(loadConfig(env))).rejects.toThrow(/PICTOR_STORAGE_URL/);
  });
});

describe('three processes, one database, one bucket', () => {
  const accountId = randomAccountId();
  const token = `token-${accountId}`;
  const auth = { authorization: `Bearer ${token}` };
  let env: Record<string, string>;
  let nodes: Node[];

  async function startNode(): Promise<Node> {
    const server = await spawnServer({ dataDir: tempDir(), accountId, token, env });
    return { server, imagesUrl: `${server.url}/client/v4/accounts/${accountId}/images` };
  }

  function post(node: Node, name = 'a.jpg'): Promise<Response> {
    const form = new FormData();
    form.append('file', new File([fixture('320x240.jpg')], name));
    return fetch(`${node.imagesUrl}/v1`, { method: 'POST', headers: auth, body: form });
  }

  beforeAll(async () => {
    const database = await createTestDatabase();
    env = { PICTOR_DATABASE_URL: database.url, ...s3Env(await createTestBucket()) };
    // Started together on an empty database: one migration run, one bootstrap account, all ready.
    nodes = await Promise.all([startNode(), startNode(), startNode()]);
  });
  afterAll(killAllChildServers);

  it('an upload on one node is read, listed and delivered (with its original) by the others', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    const image = await expectOk<ImageResult>(await post(a));
    for (const other of [b, c]) {
      expect((await expectOk<ImageResult>(await fetch(`${other.imagesUrl}/v1/${image.id}`, { headers: auth }))).id).toBe(image.id);
      const blob = await fetch(`${other.imagesUrl}/v1/${image.id}/blob`, { headers: auth });
      expect(Buffer.from(await blob.arrayBuffer()).equals(fixture('320x240.jpg'))).toBe(true);
      const delivered = await fetch(`${other.server.url}${new URL(image.variants[0] as string).pathname}`);
      expect(delivered.status).toBe(200);
    }
  });

  it('stats are exact after concurrent uploads on all three', async () => {
    const stats = async (node: Node): Promise<number> =>
      (await expectOk<{ count: { current: number } }>(await fetch(`${node.imagesUrl}/v1/stats`, { headers: auth }))).count.current;
    const before = await stats(nodes[0] as Node);
    await Promise.all(Array.from({ length: 15 }, (_, i) => post(nodes[i % 3] as Node).then(expectOk)));
    for (const node of nodes) expect(await stats(node)).toBe(before + 15);
  });

  it('kill -9 of a node during uploads: every acknowledged upload is whole on the others; no listed image lacks its original', async () => {
    const victim = await startNode();
    const acknowledged: string[] = [];
    let stop = false;
    const workers = Array.from({ length: 6 }, async () => {
      while (!stop) {
        const res = await post(victim).catch(() => undefined);
        if (res?.status === 200) acknowledged.push(((await res.json()) as { result: ImageResult }).result.id);
        else await res?.arrayBuffer();
        if (!res) return;
      }
    });
    while (acknowledged.length < 8) await new Promise((resolve) => setTimeout(resolve, 20));
    await victim.server.stop('SIGKILL');
    stop = true;
    await Promise.all(workers);

    const survivor = nodes[1] as Node;
    for (const id of acknowledged) {
      const blob = await fetch(`${survivor.imagesUrl}/v1/${id}/blob`, { headers: auth });
      expect(blob.status).toBe(200);
      expect(Buffer.from(await blob.arrayBuffer()).equals(fixture('320x240.jpg'))).toBe(true);
    }
    const list = await expectOk<{ images: ImageResult[] }>(await fetch(`${survivor.imagesUrl}/v2?per_page=10000`, { headers: auth }));
    for (const image of list.images) {
      const blob = await fetch(`${survivor.imagesUrl}/v1/${encodeURIComponent(image.id)}/blob`, { headers: auth });
      expect(blob.status, image.id).toBe(200);
      await blob.arrayBuffer();
    }
  });
});
