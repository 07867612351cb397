/**
 * The `pictor` command. `serve` runs the server; the other commands manage accounts and credentials
 * directly in the configured store, so they take effect on a running server at once.
 */
import { Command, Option } from 'commander';
import { type Config, ConfigError, loadConfig } from '../config.js';
import { AccountService, PERMISSIONS, parsePermission } from '../domain/accounts.js';
import { PictorError } from '../errors.js';
import { startServer } from '../server.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GarbageCollector } from '../domain/garbage-collector.js';
import { type MigrationProgress, StorageMigration } from '../domain/storage-migration.js';
import { FsBlobStore } from '../store/blob/fs.js';
import { openSqliteMetaStore } from '../store/meta/sqlite.js';
import { dataDirOwner } from '../store/data-dir-lock.js';
import { openMetaStore, openStores } from '../store/open.js';
import { registerBulkCommands } from './bulk/commands.js';
import { ConnectionError } from './remote/connection.js';
import { ImportPermissionError } from './bulk/account-copy.js';

function config(): Config {
  return loadConfig();
}

/** Runs `work` with an AccountService over the configured metadata store, closing it afterwards. */
async function withAccounts<T>(work: (accounts: AccountService) => Promise<T>): Promise<T> {
  const store = await openMetaStore(config());
  try {
    return await work(new AccountService(store));
  } finally {
    await store.close();
  }
}

/** `pictor migrate`: brings the database schema up to date and exits (what a start with PICTOR_MIGRATE=auto does). */
async function migrate(): Promise<void> {
  const settings = config();
  const database = settings.database ? { ...settings.database, migrate: true } : undefined;
  const store = await openMetaStore({ ...settings, database });
  await store.close();
  process.stdout.write('migrations: up to date\n');
}

/** `pictor gc`: removes originals no row references (older than the grace period) and expired renders. */
async function gc(options: { grace?: string }): Promise<void> {
  const settings = config();
  const graceSeconds = options.grace === undefined ? settings.orphanGraceSeconds : Number(options.grace);
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0) throw new ConfigError('--grace', 'must be a whole number of seconds');
  const stores = await openStores(settings);
  try {
    const collector = new GarbageCollector(stores.meta, stores.blobs, stores.renders, {
      orphanGraceMs: graceSeconds * 1000,
      renderTtlMs: settings.storage ? settings.storage.renderTtlSeconds * 1000 : undefined,
      now: Date.now,
    });
    const done = await collector.collect();
    if (!done) process.stdout.write('another node is collecting right now; nothing done\n');
    else process.stdout.write(`removed ${done.orphans} orphan original(s) and ${done.renders} expired render(s)\n`);
  } finally {
    await stores.close();
  }
}

/** One line redrawn in place on a terminal, a line per step elsewhere (logs). */
function progressBar(): (progress: MigrationProgress) => void {
  let lastLine = 0;
  return (progress) => {
    const done = progress.imagesCopied + progress.imagesSkipped;
    const total = Math.max(1, progress.imagesTotal);
    const width = 30;
    const filled = Math.round((done / total) * width);
    const text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${progress.imagesTotal} images (${progress.imagesCopied} copied, ${progress.imagesSkipped} already there)`;
    if (process.stderr.isTTY) process.stderr.write(`\r${text}`);
    else if (done === progress.imagesTotal || Date.now() - lastLine > 2000) {
      lastLine = Date.now();
      process.stderr.write(`${text}\n`);
    }
  };
}

/**
 * `pictor migrate-storage --from DIR`: copies the embedded install in DIR into the configured
 * PostgreSQL (PICTOR_DATABASE_URL) and/or S3 (PICTOR_STORAGE_URL). The source is only read: its
 * database file is copied to a temporary directory and opened there.
 */
async function migrateStorage(options: { from: string }): Promise<void> {
  const settings = config();
  if (!settings.database && !settings.storage) {
    throw new ConfigError('PICTOR_DATABASE_URL', 'and/or PICTOR_STORAGE_URL must name the stores to copy into');
  }
  const from = path.resolve(options.from);
  const database = path.join(from, 'pictor.sqlite');
  if (!fs.existsSync(database)) throw new ConfigError('--from', `must be a Pictor data directory (no ${database})`);
  const owner = dataDirOwner(from);
  if (owner !== undefined) throw new ConfigError('--from', `is in use by a running Pictor server (pid ${owner}): stop it first`);
  if (path.resolve(settings.dataDir) === from && !settings.database) {
    throw new ConfigError('PICTOR_DATA_DIR', 'must not be the source directory when the metadata stays in SQLite');
  }
  const snapshot = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-migrate-'));
  for (const suffix of ['', '-wal']) {
    if (fs.existsSync(database + suffix)) fs.copyFileSync(database + suffix, path.join(snapshot, `pictor.sqlite${suffix}`));
  }
  const sourceMeta = await openSqliteMetaStore(snapshot);
  const target = await openStores(settings);
  try {
    const migration = new StorageMigration(
      { meta: sourceMeta, blobs: FsBlobStore.openForReading(path.join(from, 'originals')) },
      { meta: target.meta, blobs: target.blobs },
      progressBar(),
    );
    const done = await migration.run();
    if (process.stderr.isTTY) process.stderr.write('\n');
    process.stdout.write(
      `copied ${done.imagesCopied} image(s), ${done.imagesSkipped} already there, ${done.accounts} account(s); every original verified by sha256\n`,
    );
  } finally {
    await target.close();
    await sourceMeta.close();
    fs.rmSync(snapshot, { recursive: true, force: true });
  }
}

/**
 * Closing the stores once the connections are gone takes moments; if it hangs (a database that stopped
 * answering), the process exits anyway this long after the shutdown timeout, with code 1.
 */
const STORE_CLOSE_GRACE_SECONDS = 10;

async function serve(): Promise<void> {
  const settings = config();
  const server = await startServer(settings);
  if (server.firstRun) {
    process.stdout.write(
      [
        '',
        'Pictor created an account and an API token for this new data directory.',
        'The token is shown only this once; store it now.',
        `  account id: ${server.firstRun.accountId}`,
        `  API token:  ${server.firstRun.token}`,
        `  API base:   ${server.url}/client/v4`,
        '',
      ].join('\n') + '\n',
    );
  }
  let closing = false;
  // SIGTERM from an orchestrator and SIGINT from a terminal stop the same way. A repeated signal does not
  // cut the wait short: `npm start` in a terminal delivers Ctrl-C twice (to npm's process group and again
  // forwarded by npm), and the wait is bounded by PICTOR_SHUTDOWN_TIMEOUT anyway.
  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    const timeoutSeconds = settings.shutdownTimeoutSeconds;
    server.app.log.info({ signal, timeoutSeconds }, 'shutting down: no new connections, finishing requests in progress');
    const backstop = setTimeout(() => {
      server.app.log.error({ graceSeconds: STORE_CLOSE_GRACE_SECONDS }, 'the stores did not close after the shutdown timeout; exiting');
      process.exit(1);
    }, (timeoutSeconds + STORE_CLOSE_GRACE_SECONDS) * 1000);
    backstop.unref();
    server
      .close()
      .then(() => {
        server.app.log.info('stopped: stores closed');
        process.exit(0);
      })
      .catch((error: unknown) => {
        server.app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

const permissionOption = new Option('--permission <permission>', 'what the credential may do')
  .choices([...PERMISSIONS])
  .default('images:write');

export function buildCli(): Command {
  const program = new Command('pictor').description('Self-hosted Cloudflare Images-compatible image server');

  program.command('serve').description('run the HTTP server').action(serve);
  program.command('migrate').description('bring the database schema up to date, then exit').action(migrate);
  program
    .command('migrate-storage')
    .description('copy an embedded install (SQLite + disk) into the configured PostgreSQL and/or S3 (resumable)')
    .requiredOption('--from <dir>', 'the embedded data directory to copy (only read)')
    .action(migrateStorage);
  program
    .command('gc')
    .description('remove originals no image references (older than the grace period) and expired renders')
    .option('--grace <seconds>', 'leave originals younger than this (default PICTOR_GC_GRACE_SECONDS, 3600)')
    .action(gc);

  const account = program.command('account').description('manage accounts');
  account
    .command('create')
    .description('create an account (with the public variant and a default signing key)')
    .option('--id <id>', 'account id: 32 lowercase hex characters (random if omitted)')
    .action(async (options: { id?: string }) => {
      const created = await withAccounts((accounts) => accounts.createAccount(options.id));
      process.stdout.write(`account id:   ${created.id}\naccount hash: ${created.hash}\n`);
    });
  account
    .command('list')
    .description('list accounts')
    .action(async () => {
      const all = await withAccounts((accounts) => accounts.listAccounts());
      for (const a of all) process.stdout.write(`${a.id}  hash=${a.hash}  created=${new Date(a.createdAt).toISOString()}\n`);
    });

  const token = program.command('token').description('manage API tokens (Authorization: Bearer)');
  token
    .command('create')
    .description('create an API token; the token is printed alone on the last line')
    .requiredOption('--account <id>', 'account the token is for')
    .addOption(permissionOption)
    .option('--name <name>', 'a label for the token')
    .action(async (options: { account: string; permission: string; name?: string }) => {
      const issued = await withAccounts((accounts) =>
        accounts.issueCredential({
          accountId: options.account,
          permission: parsePermission(options.permission),
          ...(options.name !== undefined && { name: options.name }),
        }),
      );
      process.stdout.write(`token id: ${issued.credential.id} (${issued.credential.permission})\n${issued.secret}\n`);
    });
  token
    .command('list')
    .description('list API tokens and keys (never their secrets)')
    .option('--account <id>', 'only this account')
    .action(async (options: { account?: string }) => {
      const all = await withAccounts((accounts) => accounts.listCredentials(options.account));
      for (const c of all) {
        const state = c.revokedAt === null ? 'active' : `revoked ${new Date(c.revokedAt).toISOString()}`;
        const who = c.kind === 'key' ? ` email=${c.email ?? ''}` : '';
        process.stdout.write(`${c.id}  ${c.kind}  account=${c.accountId}  ${c.permission}  "${c.name}"${who}  ${state}\n`);
      }
    });
  token
    .command('revoke <id>')
    .description('revoke an API token or key by its id')
    .action(async (id: string) => {
      const revoked = await withAccounts((accounts) => accounts.revokeCredential(id));
      if (!revoked) throw new PictorError(5400, `No active credential with id ${id}`);
      process.stdout.write(`revoked ${id}\n`);
    });

  const key = program.command('key').description('manage legacy API keys (X-Auth-Email + X-Auth-Key)');
  key
    .command('create')
    .description('create an API key bound to an email; the key is printed alone on the last line')
    .requiredOption('--account <id>', 'account the key is for')
    .requiredOption('--email <email>', 'the X-Auth-Email value that goes with the key')
    .addOption(permissionOption)
    .option('--name <name>', 'a label for the key')
    .action(async (options: { account: string; email: string; permission: string; name?: string }) => {
      const issued = await withAccounts((accounts) =>
        accounts.issueCredential({
          accountId: options.account,
          email: options.email,
          permission: parsePermission(options.permission),
          ...(options.name !== undefined && { name: options.name }),
        }),
      );
      process.stdout.write(`key id: ${issued.credential.id} (${issued.credential.permission})\n${issued.secret}\n`);
    });

  registerBulkCommands(program);
  return program;
}

buildCli()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    if (error instanceof ConfigError || error instanceof PictorError || error instanceof ConnectionError || error instanceof ImportPermissionError) {
      process.stderr.write(`pictor: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`pictor: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
