/**
 * Schema migrations, written once with Kysely's schema builder so every dialect runs the same steps.
 * Never edit a released migration: add a new one.
 */
import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';

const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('accounts')
        .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('hash', 'varchar(32)', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('flexible_variants', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('browser_ttl', 'integer', (c) => c.notNull().defaultTo(172800))
        .addColumn('image_count', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();

      await db.schema
        .createTable('credentials')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('account_id', 'varchar(32)', (c) => c.notNull().references('accounts.id'))
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
        .addColumn('account_id', 'varchar(32)', (c) => c.notNull().references('accounts.id'))
        .addColumn('id', 'varchar(1024)', (c) => c.notNull())
        .addColumn('filename', 'varchar(255)', (c) => c.notNull())
        .addColumn('creator', 'varchar(1024)')
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
        .addPrimaryKeyConstraint('images_pk', ['account_id', 'id'])
        .execute();
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

      await db.schema
        .createTable('variants')
        .addColumn('account_id', 'varchar(32)', (c) => c.notNull().references('accounts.id'))
        .addColumn('name', 'varchar(99)', (c) => c.notNull())
        .addColumn('options', 'text', (c) => c.notNull())
        .addColumn('never_require_signed', 'integer', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('variants_pk', ['account_id', 'name'])
        .execute();

      await db.schema
        .createTable('signing_keys')
        .addColumn('account_id', 'varchar(32)', (c) => c.notNull().references('accounts.id'))
        .addColumn('name', 'varchar(20)', (c) => c.notNull())
        .addColumn('value', 'varchar(128)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('signing_keys_pk', ['account_id', 'name'])
        .execute();

      await db.schema
        .createTable('direct_uploads')
        .addColumn('token_hash', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('account_id', 'varchar(32)', (c) => c.notNull().references('accounts.id'))
        .addColumn('image_id', 'varchar(1024)', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('direct_uploads_image_idx').on('direct_uploads').columns(['account_id', 'image_id']).execute();
      await db.schema.createIndex('direct_uploads_expiry_idx').on('direct_uploads').columns(['expires_at']).execute();
    },
  },
  '0002_direct_upload_lease': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('direct_uploads').addColumn('leased_until', 'bigint').execute();
    },
  },
};

class StaticMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

/** Brings the schema up to date; throws with the failing migration's error. */
export async function migrateToLatest(db: Kysely<unknown>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: new StaticMigrationProvider(),
    migrationTableName: 'pictor_migrations',
    migrationLockTableName: 'pictor_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`Database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, { cause: error });
  }
}
