/** Account-wide delivery settings (`GET/PATCH /images/v1/config`): flexible variants and browser TTL. */
import { badRequest, PictorError } from '../errors.js';
import { isPlainObject } from './metadata.js';
import type { Account, AccountSettings } from './model.js';
import { checkBrowserTtl } from './variants.js';
import type { MetaStore } from '../store/ports.js';

export interface AccountSettingsView {
  flexible_variants: boolean;
  browser_ttl: number;
}

function view(account: Account): AccountSettingsView {
  return { flexible_variants: account.flexibleVariants, browser_ttl: account.browserTtl };
}

export class AccountSettingsService {
  constructor(private readonly store: MetaStore) {}

  async get(accountId: string): Promise<AccountSettingsView> {
    const account = await this.store.findAccount(accountId);
    if (!account) throw new PictorError(5403);
    return view(account);
  }

  async update(accountId: string, body: unknown): Promise<AccountSettingsView> {
    if (!isPlainObject(body)) throw badRequest('The request body must be a JSON object');
    const unknown = Object.keys(body).filter((key) => key !== 'flexible_variants' && key !== 'browser_ttl');
    if (unknown.length > 0) throw badRequest(`Unknown setting ${unknown.join(', ')}`);
    const patch: Partial<AccountSettings> = {};
    if (body.flexible_variants !== undefined) {
      if (typeof body.flexible_variants !== 'boolean') throw badRequest('flexible_variants must be a boolean');
      patch.flexibleVariants = body.flexible_variants;
    }
    if (body.browser_ttl !== undefined) patch.browserTtl = checkBrowserTtl(body.browser_ttl, 'browser_ttl');
    const account = await this.store.updateAccountSettings(accountId, patch);
    if (!account) throw new PictorError(5403);
    return view(account);
  }
}
