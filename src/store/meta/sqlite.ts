/** SQLite dialect of the metadata store: one file under the data dir, WAL mode, full fsync on commit. */
import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { matchesMetaFilter } from '../../domain/meta-filter.js';
import type { Metadata, MetaFilter } from '../../domain/model.js';
import { KyselyMetaStore } from './kysely-store.js';
import { migrateToLatest } from './migrations.js';
import type { Database } from './schema.js';

const META_MATCH_FUNCTION = 'pictor_meta_match';

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export async function openSqliteMetaStore(dataDir: string): Promise<KyselyMetaStore> {
  fs.mkdirSync(dataDir, { recursive: true });
  const database = new SqliteDatabase(path.join(dataDir, 'pictor.sqlite'));
  database.pragma('journal_mode = WAL');
  // FULL: a commit is on disk before the API acknowledges it, even on power loss.
  database.pragma('synchronous = FULL');
  // The CLI writes to the same file while the server runs; wait for its lock instead of failing.
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  database.function(META_MATCH_FUNCTION, { deterministic: true }, (meta: unknown, filter: unknown) =>
    matchesMetaFilter(JSON.parse(String(meta)) as Metadata, JSON.parse(String(filter)) as MetaFilter) ? 1 : 0,
  );

  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  await migrateToLatest(db as Kysely<unknown>, 'sqlite');
  return new KyselyMetaStore(db, {
    isUniqueViolation,
    // One connection: Kysely runs SQLite transactions one at a time, so they are already serial.
    lockAccount: async () => undefined,
    // The data-dir lock makes this process the store's only server.
    runExclusive: (_db, _name, _wait, work) => work(),
    metaMatches: (filter) => sql<boolean>`${sql.raw(META_MATCH_FUNCTION)}(images.meta, ${JSON.stringify(filter)}) = 1`,
  });
}
