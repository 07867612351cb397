/**
 * Schema migrations, written once with Kysely's schema builder. The steps are the same on every dialect
 * except where PostgreSQL needs more words (see `postgresImageIndexes` and `text`).
 * Never edit a released migration: add a new one. Within a major version migrations only add.
 */
import { type ColumnDataType, type Expression, type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

/**
 * A text column used in keys and ordering. On PostgreSQL it collates in binary ("C") order, so pages come
 * back in the same order as on SQLite whatever the database's locale.
 */
function text(dialect: DialectName, length: number): ColumnDataType | Expression<unknown> {
  return dialect === 'postgres' ? sql`varchar(${sql.raw(String(length))}) collate "C"` : (`varchar(${length})` as ColumnDataType);
}

/**
 * PostgreSQL cannot put a 1,024-character id of 4-byte UTF-8 (4 KB) in a B-tree entry (limit 2,704
 * bytes), so there image ids are unique through a digest (md5), looked up through hash indexes, and listed
 * through (account_id, draft, uploaded_at) with the id as an in-memory tie-breaker.
 */
async function postgresImageIndexes(db: Kysely<unknown>): Promise<void> {
  // md5(text) is immutable, so it can be indexed; a crafted collision could only refuse one's own second id.
  await sql`create unique index images_id_unique on images (account_id, md5(id))`.execute(db);
  await sql`create index images_id_hash on images using hash (id)`.execute(db);
  await sql`create index images_list_idx on images (account_id, draft, uploaded_at)`.execute(db);
  await sql`create index images_creator_hash on images using hash (creator)`.execute(db);
  await sql`create index direct_uploads_image_hash on direct_uploads using hash (image_id)`.execute(db);
  await sql`create index direct_uploads_expiry_idx on direct_uploads (expires_at)`.execute(db);
}

function migrationsFor(dialect: DialectName): Record<string, Migration> {
  const postgres = dialect === 'postgres';
  return {
  '0001_initial': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('accounts')
        .addColumn('id', text(dialect, 32), (c) => c.primaryKey())
        .addColumn('hash', text(dialect, 32), (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('flexible_variants', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('browser_ttl', 'integer', (c) => c.notNull().defaultTo(172800))
        .addColumn('image_count', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();

      await db.schema
        .createTable('credentials')
        .addColumn('id', text(dialect, 64), (c) => c.primaryKey())
        .addColumn('account_id', text(dialect, 32), (c) => c.notNull().references('accounts.id'))
        .addColumn('kind', 'varchar(8)', (c) => c.notNull())
        .addColumn('email', 'varchar(320)')
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('permission', 'varchar(32)', (c) => c.notNull())
        .addColumn('secret_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute();

      await db.schema
        .createTable('images')
        .addColumn('account_id', text(dialect, 32), (c) => c.notNull().references('accounts.id'))
        .addColumn('id', text(dialect, 1024), (c) => c.notNull())
        .addColumn('filename', 'varchar(255)', (c) => c.notNull())
        .addColumn('creator', text(dialect, 1024))
        .addColumn('meta', 'text', (c) => c.notNull())
        .addColumn('require_signed', 'integer', (c) => c.notNull())
        .addColumn('uploaded_at', 'bigint', (c) => c.notNull())
        .addColumn('draft', 'integer', (c) => c.notNull())
        .addColumn('blob_key', 'varchar(255)')
        .addColumn('content_type', 'varchar(64)')
        .addColumn('size', 'bigint')
        .addColumn('sha256', 'varchar(64)')
        .addColumn('width', 'integer')
        .addColumn('height', 'integer')
        .addColumn('frames', 'integer')
        .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
        .$call((table) => (postgres ? table : table.addPrimaryKeyConstraint('images_pk', ['account_id', 'id'])))
        .execute();
      if (!postgres) {
        // Lists walk (uploaded_at, id) within an account, skipping drafts; creator filters add an equality.
        await db.schema
          .createIndex('images_list_idx')
          .on('images')
          .columns(['account_id', 'draft', 'uploaded_at', 'id'])
          .execute();
        await db.schema
          .createIndex('images_creator_idx')
          .on('images')
          .columns(['account_id', 'draft', 'creator', 'uploaded_at', 'id'])
          .execute();
      }

      await db.schema
        .createTable('variants')
        .addColumn('account_id', text(dialect, 32), (c) => c.notNull().references('accounts.id'))
        .addColumn('name', text(dialect, 99), (c) => c.notNull())
        .addColumn('options', 'text', (c) => c.notNull())
        .addColumn('never_require_signed', 'integer', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('variants_pk', ['account_id', 'name'])
        .execute();

      await db.schema
        .createTable('signing_keys')
        .addColumn('account_id', text(dialect, 32), (c) => c.notNull().references('accounts.id'))
        .addColumn('name', text(dialect, 20), (c) => c.notNull())
        .addColumn('value', 'varchar(128)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('signing_keys_pk', ['account_id', 'name'])
        .execute();

      await db.schema
        .createTable('direct_uploads')
        .addColumn('token_hash', text(dialect, 64), (c) => c.primaryKey())
        .addColumn('account_id', text(dialect, 32), (c) => c.notNull().references('accounts.id'))
        .addColumn('image_id', text(dialect, 1024), (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      if (postgres) {
        await postgresImageIndexes(db);
      } else {
        await db.schema.createIndex('direct_uploads_image_idx').on('direct_uploads').columns(['account_id', 'image_id']).execute();
        await db.schema.createIndex('direct_uploads_expiry_idx').on('direct_uploads').columns(['expires_at']).execute();
      }
    },
  },
  '0002_direct_upload_lease': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('direct_uploads').addColumn('leased_until', 'bigint').execute();
    },
  },
  '0003_change_notifications': {
    async up(db: Kysely<unknown>): Promise<void> {
      if (postgres) await postgresChangeNotifications(db);
    },
  },
  '0004_batch_tokens': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('batch_tokens')
        .addColumn('token_hash', text(dialect, 64), (c) => c.primaryKey())
        .addColumn('account_id', text(dialect, 32), (c) => c.notNull().references('accounts.id'))
        .addColumn('permission', 'varchar(32)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('batch_tokens_expiry_idx').on('batch_tokens').columns(['expires_at']).execute();
      await db.schema
        .createTable('batch_token_requests')
        .addColumn('token_hash', text(dialect, 64), (c) => c.notNull())
        .addColumn('window_start', 'bigint', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('batch_token_requests_pk', ['token_hash', 'window_start'])
        .execute();
    },
  },
  '0005_webhooks': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('direct_uploads').addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema
        .createTable('webhook_destinations')
        .addColumn('id', text(dialect, 32), (c) => c.primaryKey())
        .addColumn('account_id', text(dialect, 32), (c) => c.notNull().references('accounts.id'))
        .addColumn('name', 'varchar(256)', (c) => c.notNull())
        .addColumn('url', 'varchar(2048)', (c) => c.notNull())
        .addColumn('secret', 'varchar(1024)')
        .addColumn('signing_secret', 'varchar(1024)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_success', 'bigint')
        .addColumn('last_failure', 'bigint')
        .execute();
      await db.schema.createIndex('webhook_destinations_account_idx').on('webhook_destinations').columns(['account_id']).execute();
      await db.schema
        .createTable('alert_policies')
        .addColumn('id', text(dialect, 36), (c) => c.primaryKey())
        .addColumn('account_id', text(dialect, 32), (c) => c.notNull().references('accounts.id'))
        .addColumn('name', 'varchar(256)', (c) => c.notNull())
        .addColumn('description', 'varchar(1024)', (c) => c.notNull())
        .addColumn('alert_type', 'varchar(64)', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('alert_interval', 'varchar(64)')
        .addColumn('filters', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('modified_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('alert_policies_account_idx').on('alert_policies').columns(['account_id', 'alert_type']).execute();
      await db.schema
        .createTable('alert_policy_webhooks')
        .addColumn('policy_id', text(dialect, 36), (c) => c.notNull().references('alert_policies.id').onDelete('cascade'))
        .addColumn('destination_id', text(dialect, 32), (c) => c.notNull().references('webhook_destinations.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('alert_policy_webhooks_pk', ['policy_id', 'destination_id'])
        .execute();
      await db.schema.createIndex('alert_policy_webhooks_destination_idx').on('alert_policy_webhooks').columns(['destination_id']).execute();
      // The outbox: one row per event and (policy, destination), written in the transaction of the change
      // it reports, delivered at least once by whichever node claims it.
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', text(dialect, 36), (c) => c.primaryKey())
        .addColumn('account_id', text(dialect, 32), (c) => c.notNull())
        .addColumn('destination_id', text(dialect, 32), (c) => c.notNull().references('webhook_destinations.id').onDelete('cascade'))
        .addColumn('policy_id', text(dialect, 36), (c) => c.notNull())
        .addColumn('event_id', text(dialect, 36), (c) => c.notNull())
        .addColumn('alert_type', 'varchar(64)', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('state', 'varchar(16)', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('leased_until', 'bigint')
        .addColumn('lease_owner', 'varchar(64)')
        .addColumn('finished_at', 'bigint')
        .execute();
      await db.schema.createIndex('webhook_deliveries_due_idx').on('webhook_deliveries').columns(['state', 'next_attempt_at']).execute();
      await db.schema.createIndex('webhook_deliveries_sent_idx').on('webhook_deliveries').columns(['account_id', 'state', 'finished_at']).execute();
      await db.schema
        .createTable('webhook_attempts')
        .addColumn('id', text(dialect, 36), (c) => c.primaryKey())
        .addColumn('delivery_id', text(dialect, 36), (c) => c.notNull())
        .addColumn('destination_id', text(dialect, 32), (c) => c.notNull().references('webhook_destinations.id').onDelete('cascade'))
        .addColumn('event_id', text(dialect, 36), (c) => c.notNull())
        .addColumn('attempted_at', 'bigint', (c) => c.notNull())
        .addColumn('status_code', 'integer')
        .addColumn('error', 'varchar(1024)')
        .addColumn('duration_ms', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhook_attempts_destination_idx').on('webhook_attempts').columns(['destination_id', 'attempted_at']).execute();
    },
  },
  };
}

/**
 * Every write that delivery depends on announces itself on the `pictor_changes` channel, fired by the
 * database itself so writes from the CLI and other nodes count too: `i:<account>:<image id>` for an
 * image, `a:<account>` for an account's settings, variants and signing keys. Each node's memo listens
 * (see postgres.ts). The quota counter (`image_count`) changes nothing a delivery shows: not announced.
 */
async function postgresChangeNotifications(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function pictor_notify_image_change() returns trigger language plpgsql as $$
    declare changed images%rowtype := case when tg_op = 'DELETE' then old else new end;
    begin
      perform pg_notify('pictor_changes', 'i:' || changed.account_id || ':' || changed.id);
      return null;
    end $$`.execute(db);
  await sql`
    create function pictor_notify_account_change() returns trigger language plpgsql as $$
    declare data jsonb := to_jsonb(case when tg_op = 'DELETE' then old else new end);
    begin
      perform pg_notify('pictor_changes', 'a:' || coalesce(data->>'account_id', data->>'id'));
      return null;
    end $$`.execute(db);
  await sql`create trigger images_changed after insert or update or delete on images
    for each row execute function pictor_notify_image_change()`.execute(db);
  for (const table of ['variants', 'signing_keys']) {
    await sql`create trigger ${sql.raw(`${table}_changed`)} after insert or update or delete on ${sql.raw(table)}
      for each row execute function pictor_notify_account_change()`.execute(db);
  }
  await sql`create trigger accounts_changed after update of hash, flexible_variants, browser_ttl on accounts
    for each row execute function pictor_notify_account_change()`.execute(db);
}

class StaticMigrationProvider implements MigrationProvider {
  constructor(private readonly dialect: DialectName) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    return migrationsFor(this.dialect);
  }
}

/**
 * Brings the schema up to date; throws with the failing migration's error. On PostgreSQL Kysely's
 * migrator holds an advisory lock, so nodes starting together on an empty database migrate once.
 */
/**
 * The schema's major version. Within a major version migrations only add (tables, columns, indexes,
 * triggers), so a node that finds migrations it does not know, all of its own major, can run on the
 * schema as it is. A migration that changes or removes anything starts a new major and is named
 * `<major>.<NNNN>_<what>` (names without a dot belong to major 1); older nodes refuse to start on it.
 */
const SCHEMA_MAJOR = 1;

function majorOf(migrationName: string): number {
  const dot = /^(\d+)\./.exec(migrationName);
  return dot?.[1] ? Number(dot[1]) : 1;
}

/** Names of the migrations the database has run, or none when it has no migration table yet. */
async function executedMigrations(db: Kysely<unknown>): Promise<string[]> {
  const tables = await db.introspection.getTables();
  if (!tables.some((table) => table.name === 'pictor_migrations')) return [];
  const { rows } = await sql<{ name: string }>`select name from pictor_migrations`.execute(db);
  return rows.map((row) => row.name);
}

/**
 * Checks that this node can run on the database's schema: true when it may migrate, false when a newer
 * node of the same major already went further (additive: run as is); throws for a newer major.
 */
export async function checkSchema(db: Kysely<unknown>, dialect: DialectName): Promise<boolean> {
  const known = new Set(Object.keys(migrationsFor(dialect)));
  const unknown = (await executedMigrations(db)).filter((name) => !known.has(name));
  const breaking = unknown.filter((name) => majorOf(name) !== SCHEMA_MAJOR);
  if (breaking.length > 0) {
    throw new Error(
      `The database schema was migrated by a newer Pictor (${breaking.join(', ')}, schema major ${majorOf(breaking[0] as string)}); ` +
        `this node knows schema major ${SCHEMA_MAJOR}: upgrade it`,
    );
  }
  return unknown.length === 0;
}

export async function migrateToLatest(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  // A newer node of the same major migrated further: its migrations only add, so this node runs as is.
  if (!(await checkSchema(db, dialect))) return;
  const migrator = new Migrator({
    db,
    provider: new StaticMigrationProvider(dialect),
    migrationTableName: 'pictor_migrations',
    migrationLockTableName: 'pictor_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`Database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, { cause: error });
  }
}
