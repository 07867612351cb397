/**
 * PostgreSQL dialect of the metadata store: Kysely's PostgresDialect over a `pg` pool. Every query is
 * the shared one in kysely-store.ts; this file holds only what differs: connecting, unique violations
 * (23505), per-connection settings, and metadata filters compiled to jsonb SQL.
 */
import { Kysely, PostgresDialect, type RawBuilder, type SqlBool, sql } from 'kysely';
import pg from 'pg';
import { isStrictNumber } from '../../domain/meta-filter.js';
import type { MetaFilter, MetaFilterOperator } from '../../domain/model.js';
import { KyselyMetaStore } from './kysely-store.js';
import { type DialectName, migrateToLatest } from './migrations.js';
import type { Database } from './schema.js';

export interface PostgresOptions {
  url: string;
  poolSize: number;
  /** Run pending migrations at start (`PICTOR_MIGRATE=auto`); otherwise only check none is pending. */
  migrate: boolean;
}

/** No statement may hold a connection longer than this. */
const STATEMENT_TIMEOUT_MS = 30_000;

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '23505';
}

/** A JSON number as text: the one form both JavaScript and PostgreSQL read the same way (see meta-filter.ts). */
const NUMBER_PATTERN = '^-?[0-9]+(\\.[0-9]+)?$';

/**
 * `meta.a.b[op]=v` as jsonb SQL, with the same semantics as `matchesMetaFilter`: every step of the path
 * must be an object (arrays are not indexed into), null never matches, and strings that spell a number
 * or a boolean count for the numeric and boolean operators. Numbers compare as float8, like JavaScript.
 */
function metaMatches(filter: MetaFilter): RawBuilder<SqlBool> {
  const meta = sql`(images.meta::jsonb)`;
  const at = (path: string[]): RawBuilder<unknown> => sql`(${meta} #> ${`{${path.join(',')}}`}::text[])`;
  const value = at(filter.path);
  const steps = filter.path.slice(0, -1).map((_, i) => sql`jsonb_typeof(${at(filter.path.slice(0, i + 1))}) = 'object'`);
  const kind = sql`jsonb_typeof(${value})`;
  const textValue = sql`(${value} #>> '{}')`;
  const asNumber = sql`(case when ${kind} = 'number' then ${textValue}::float8 when ${kind} = 'string' and ${textValue} ~ ${NUMBER_PATTERN} then ${textValue}::float8 end)`;

  const one = (operator: MetaFilterOperator, expected: string): RawBuilder<SqlBool> => {
    // Stored metadata never holds U+0000, and PostgreSQL cannot compare text that does.
    if (expected.includes('\u0000')) return sql<SqlBool>`false`;
    const expectedNumber = isStrictNumber(expected) ? Number(expected) : undefined;
    const numeric = (op: string): RawBuilder<SqlBool> =>
      expectedNumber === undefined ? sql<SqlBool>`false` : sql<SqlBool>`${asNumber} ${sql.raw(op)} ${expectedNumber}::float8`;
    switch (operator) {
      case 'eq':
      case 'in':
        return sql<SqlBool>`((${kind} = 'string' and ${textValue} = ${expected})
          or (${kind} = 'number' and ${expectedNumber === undefined ? sql`false` : sql`${textValue}::float8 = ${expectedNumber}::float8`})
          or (${kind} = 'boolean' and ${textValue} = ${expected}))`;
      case 'eq:string':
      case 'in:string':
        return sql<SqlBool>`(${kind} = 'string' and ${textValue} = ${expected})`;
      case 'eq:number':
      case 'in:number':
        return numeric('=');
      case 'eq:boolean':
        return sql<SqlBool>`(${kind} in ('boolean', 'string') and ${textValue} = ${expected})`;
      case 'gt':
        return numeric('>');
      case 'gte':
        return numeric('>=');
      case 'lt':
        return numeric('<');
      case 'lte':
        return numeric('<=');
    }
  };
  const anyValue = sql.join(filter.values.map((expected) => one(filter.operator, expected)), sql` or `);
  return sql<SqlBool>`(${sql.join([...steps, sql`(${anyValue})`], sql` and `)})`;
}

export async function openPostgresMetaStore(options: PostgresOptions): Promise<KyselyMetaStore> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    // A node that cannot reach its database fails at start rather than hanging.
    connectionTimeoutMillis: 10_000,
  });
  // An idle client losing its server must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await sql`select 1`.execute(db);
    const dialect: DialectName = 'postgres';
    if (options.migrate) await migrateToLatest(db as Kysely<unknown>, dialect);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return new KyselyMetaStore(db, {
    isUniqueViolation,
    metaMatches,
    lockAccount: async (trx, accountId) => {
      await trx.selectFrom('accounts').select('id').where('id', '=', accountId).forUpdate().execute();
    },
    runExclusive: (database, name, work) =>
      // A session-level advisory lock on one pooled connection; `work` uses other connections of the pool.
      database.connection().execute(async (connection) => {
        await sql`select pg_advisory_lock(hashtext(${`pictor:${name}`}))`.execute(connection);
        try {
          return await work();
        } finally {
          await sql`select pg_advisory_unlock(hashtext(${`pictor:${name}`}))`.execute(connection);
        }
      }),
    sharedByProcesses: true,
  });
}
