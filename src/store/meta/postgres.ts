/**
 * PostgreSQL dialect of the metadata store: Kysely's PostgresDialect over a `pg` pool. Every query is
 * the shared one in kysely-store.ts; this file holds only what differs: connecting, unique violations
 * (23505), per-connection settings, and metadata filters compiled to jsonb SQL.
 */
import { Kysely, PostgresDialect, type RawBuilder, type SqlBool, sql } from 'kysely';
import pg from 'pg';
import { isStrictNumber } from '../../domain/meta-filter.js';
import type { MetaFilter, MetaFilterOperator } from '../../domain/model.js';
import { Generations } from './generations.js';
import { KyselyMetaStore } from './kysely-store.js';
import { type DialectName, checkSchema, migrateToLatest } from './migrations.js';
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

const CHANNEL = 'pictor_changes';
const RECONNECT_MS = [250, 1000, 5000];

/**
 * Listens on one dedicated connection for the changes other processes announce (see migration 0003)
 * and bumps the matching generation. While the connection is down the generations vouch for nothing,
 * so no node serves a memo of something it could not hear change.
 */
class ChangeFeed {
  private client: pg.Client | undefined;
  private listening = false;
  private closed = false;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly generations: Generations,
  ) {}

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (message) => this.apply(message.payload ?? ''));
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    this.client = client;
    try {
      await client.connect();
      await client.query(`listen ${CHANNEL}`);
      this.listening = true;
      this.failures = 0;
      this.generations.setTrusted(true);
    } catch {
      this.lost(client);
    }
  }

  private queued: Promise<void> | undefined;
  private lastBarrier: Promise<void> = Promise.resolve();

  /**
   * Resolves once every change committed before the call has been applied. PostgreSQL sends a listening
   * session its notifications in commit order and ahead of any later query's result, so a trivial query
   * on the listening connection is the barrier. Callers in the same turn of the event loop share one.
   */
  settled(): Promise<void> {
    const client = this.client;
    if (!client || !this.listening) return Promise.resolve();
    if (!this.queued) {
      this.queued = new Promise<void>((resolve) => {
        setImmediate(() => {
          // Later callers need a query sent after they asked: they start the next one. One query at a
          // time on this connection (pg deprecates queueing on a busy client): after the previous barrier.
          this.queued = undefined;
          this.lastBarrier = this.lastBarrier.then(() => client.query('select 1').then(
            () => undefined,
            () => undefined,
          ));
          void this.lastBarrier.then(resolve);
        });
      });
    }
    return this.queued;
  }

  private apply(payload: string): void {
    if (payload.startsWith('i:')) {
      const separator = payload.indexOf(':', 2);
      this.generations.bumpImage(payload.slice(2, separator), payload.slice(separator + 1));
    } else if (payload.startsWith('a:')) {
      this.generations.bumpAccount(payload.slice(2));
    } else {
      this.generations.bumpAll();
    }
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.listening = false;
    this.generations.setTrusted(false);
    client.end().catch(() => undefined);
    if (this.closed) return;
    const delay = RECONNECT_MS[Math.min(this.failures, RECONNECT_MS.length - 1)] ?? 5000;
    this.failures += 1;
    this.retry = setTimeout(() => void this.start(), delay);
    this.retry.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
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
    else await checkSchema(db as Kysely<unknown>, dialect);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const generations = new Generations({ sharedByProcesses: true });
  const feed = new ChangeFeed(options.url, generations);
  await feed.start();
  return new KyselyMetaStore(db, {
    isUniqueViolation,
    metaMatches,
    skipLocked: true,
    close: () => feed.close(),
    settled: () => feed.settled(),
    lockAccount: async (trx, accountId) => {
      await trx.selectFrom('accounts').select('id').where('id', '=', accountId).forUpdate().execute();
    },
    runExclusive: (database, name, wait, work) =>
      // A session-level advisory lock on one pooled connection; `work` uses other connections of the pool.
      database.connection().execute(async (connection) => {
        const key = `pictor:${name}`;
        if (wait) {
          await sql`select pg_advisory_lock(hashtext(${key}))`.execute(connection);
        } else {
          const { rows } = await sql<{ taken: boolean }>`select pg_try_advisory_lock(hashtext(${key})) as taken`.execute(connection);
          if (!rows[0]?.taken) return undefined;
        }
        try {
          return await work();
        } finally {
          await sql`select pg_advisory_unlock(hashtext(${key}))`.execute(connection);
        }
      }),
  }, generations);
}
