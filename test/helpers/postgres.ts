/**
 * PostgreSQL for tests: `PICTOR_TEST_DATABASE_URL` names a server (scripts/pg-start.sh starts one);
 * each test server gets a database of its own, dropped when it stops.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const TEST_DATABASE_URL = process.env.PICTOR_TEST_DATABASE_URL;

/** The suites of this run use PostgreSQL for metadata (`PICTOR_TEST_META=postgres`). */
export const META_ON_POSTGRES = process.env.PICTOR_TEST_META === 'postgres';

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  if (!TEST_DATABASE_URL) throw new Error('PICTOR_TEST_DATABASE_URL is not set (eval "$(scripts/pg-start.sh)")');
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `pictor_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`create database ${name}`));
  const url = new URL(TEST_DATABASE_URL as string);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin((client) => client.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}
