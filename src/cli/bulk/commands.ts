/**
 * The bulk commands (`upload`, `import cloudflare`, `export`): they work over the public Images API, so
 * against any Pictor, embedded or scaled out, and (as a source) against Cloudflare itself. A missing or
 * refused credential is a `ConnectionError` (one line, exit 2) before any work; the exit status is 1
 * when some item failed, 0 otherwise.
 */
import { type Command, Option } from 'commander';
import { CLOUDFLARE_API_BASE, type Connection, ConnectionError, type ConnectionFlags, connectionFrom } from '../remote/connection.js';
import { describeError, ImagesClient } from '../remote/images-client.js';
import { copyAccount } from './account-copy.js';
import { exportAccount } from './export-command.js';
import { ExportFolder, RemoteAccount } from './sources.js';
import { uploadFiles } from './upload-command.js';

function addConnectionOptions(command: Command): Command {
  return command
    .option('--url <url>', 'the Images API base, …/client/v4 (default: PICTOR_API_URL)')
    .option('--account <id>', 'the account id (default: CLOUDFLARE_ACCOUNT_ID)')
    .option('--token <token>', 'an API token (default: CLOUDFLARE_API_TOKEN)')
    .addOption(new Option('--concurrency <n>', 'requests at once').default('4').argParser(positiveInteger));
}

function positiveInteger(text: string): string {
  if (!/^[1-9]\d{0,2}$/.test(text)) throw new ConnectionError(`--concurrency must be a whole number from 1 to 999, not ${text}`);
  return text;
}

/** The connection, checked with a read before any work: refused or unreachable is one line and exit 2. */
async function checkedConnection(connection: Connection, role: string): Promise<ImagesClient> {
  const client = new ImagesClient(connection);
  try {
    await client.stats();
  } catch (error) {
    throw new ConnectionError(`${role} ${connection.apiBase} (account ${connection.accountId}) refused the connection: ${describeError(error)}`);
  }
  return client;
}

function parseMetadataOption(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConnectionError(`--metadata is not JSON: ${describeError(error)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConnectionError('--metadata must be a JSON object');
  return parsed as Record<string, unknown>;
}

interface UploadCommandOptions extends ConnectionFlags {
  concurrency: string;
  idFromPath?: boolean;
  metadata?: string;
  requireSignedUrls?: boolean;
  creator?: string;
  dryRun?: boolean;
  manifest?: string;
}

export function registerBulkCommands(program: Command): void {
  addConnectionOptions(
    program
      .command('upload')
      .description('upload image files and folders (recursively), or restore an export with --manifest')
      .argument('[paths...]', 'image files and folders'),
  )
    .option('--id-from-path', 'use each path under its folder as the image id; a rerun skips what is already there')
    .option('--metadata <json>', 'metadata for every image (a <file>.json next to an image adds to it)')
    .option('--require-signed-urls', 'upload every image with requireSignedURLs')
    .option('--creator <creator>', 'the creator of every image')
    .option('--dry-run', 'list what would be uploaded; change nothing')
    .option('--manifest <file>', 'restore the export this manifest.json describes (ids, attributes, times, variants, keys, settings)')
    .action(async (paths: string[], options: UploadCommandOptions) => {
      const connection = connectionFrom(options);
      const concurrency = Number(options.concurrency);
      if (options.manifest !== undefined) {
        if (paths.length > 0) throw new ConnectionError('give either paths or --manifest, not both');
        const target = await checkedConnection(connection, 'the target');
        const summary = await copyAccount(new ExportFolder(options.manifest), target, { concurrency });
        process.exitCode = summary.failed.length > 0 ? 1 : 0;
        return;
      }
      if (paths.length === 0) throw new ConnectionError('name at least one file or folder to upload (or --manifest)');
      await checkedConnection(connection, 'the server');
      const summary = await uploadFiles(connection, paths, {
        concurrency,
        idFromPath: options.idFromPath === true,
        requireSignedUrls: options.requireSignedUrls === true,
        dryRun: options.dryRun === true,
        ...(options.metadata !== undefined && { metadata: parseMetadataOption(options.metadata) }),
        ...(options.creator !== undefined && { creator: options.creator }),
      });
      process.exitCode = summary.failed.length > 0 ? 1 : 0;
    });

  const importCommand = program.command('import').description('copy an account from another service into this one');
  addConnectionOptions(
    importCommand
      .command('cloudflare')
      .description('copy a Cloudflare Images account (images, variants, signing keys, settings); rerun to resume'),
  )
    .option('--from-url <url>', 'the source API base', CLOUDFLARE_API_BASE)
    .requiredOption('--from-account <id>', 'the source account id')
    .requiredOption('--from-token <token>', 'a source API token that may read images, variants and keys')
    .action(async (options: ConnectionFlags & { concurrency: string; fromUrl: string; fromAccount: string; fromToken: string }) => {
      const target = await checkedConnection(connectionFrom(options), 'the target');
      const source = await checkedConnection(connectionFrom({ url: options.fromUrl, account: options.fromAccount, token: options.fromToken }, {}), 'the source');
      const summary = await copyAccount(new RemoteAccount(source), target, { concurrency: Number(options.concurrency) });
      process.exitCode = summary.failed.length > 0 ? 1 : 0;
    });

  addConnectionOptions(
    program
      .command('export')
      .description('write every original and a manifest.json (attributes, variants, keys, settings) to a folder')
      .argument('<folder>', 'where to write; a rerun adds only what is missing'),
  ).action(async (folder: string, options: ConnectionFlags & { concurrency: string }) => {
    const connection = connectionFrom(options);
    await checkedConnection(connection, 'the server');
    const summary = await exportAccount(connection, folder, { concurrency: Number(options.concurrency) });
    process.exitCode = summary.failed.length > 0 ? 1 : 0;
  });
}
