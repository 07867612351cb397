/**
 * Batch tokens (Cloudflare's Images batch API): `GET …/images/v1/batch_token` mints a short-lived token
 * for the credential's account, carrying its permission; with it the batch host takes the image routes
 * without the account in the path. Each token may make at most `ratePerSecond` requests a second, counted
 * in the shared metadata store so the limit holds across any number of nodes.
 */
import { randomBytes } from 'node:crypto';
import { PictorError } from '../errors.js';
import type { MetaStore } from '../store/ports.js';
import { hashSecret } from './accounts.js';
import type { BatchToken, Credential } from './model.js';

export interface BatchTokenOptions {
  /** How long a token lives. */
  ttlMs: number;
  ratePerSecond: number;
  now: () => number;
}

export class BatchTokenService {
  constructor(
    private readonly meta: MetaStore,
    private readonly options: BatchTokenOptions,
  ) {}

  async issue(credential: Credential): Promise<{ token: string; expiresAt: string }> {
    const token = randomBytes(32).toString('base64url');
    const createdAt = this.options.now();
    const expiresAt = createdAt + this.options.ttlMs;
    await this.meta.insertBatchToken({
      tokenHash: hashSecret(`batch:${token}`),
      accountId: credential.accountId,
      permission: credential.permission,
      createdAt,
      expiresAt,
    });
    return { token, expiresAt: new Date(expiresAt).toISOString() };
  }

  /**
   * The live token for `token`, counted against its rate: unknown and expired tokens are 403 code 10000
   * (as any refused credential); over the rate, 429 code 971 with Retry-After.
   */
  async admit(token: string): Promise<BatchToken> {
    const found = await this.meta.findBatchToken(hashSecret(`batch:${token}`));
    const now = this.options.now();
    if (!found || found.expiresAt <= now) throw new PictorError(10000);
    const count = await this.meta.countBatchRequest(found.tokenHash, Math.floor(now / 1000));
    if (count > this.options.ratePerSecond) throw new PictorError(971, undefined, { retryAfter: 1 });
    return found;
  }

  /** Forgets expired tokens and past rate windows. */
  sweep(): Promise<number> {
    return this.meta.removeExpiredBatchTokens(this.options.now() - 60_000);
  }
}
