/** Account-wide delivery settings (`GET/PATCH /images/v1/config`): flexible variants and browser TTL. */
import { PictorError } from '../errors.js';
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

  async update(accountId: string, body: Partial<AccountSettingsView>): Promise<AccountSettingsView> {
    const patch: Partial<AccountSettings> = {};
    if (body.flexible_variants !== undefined) patch.flexibleVariants = body.flexible_variants;
    if (body.browser_ttl !== undefined) patch.browserTtl = checkBrowserTtl(body.browser_ttl, 'browser_ttl');
    const account = await this.store.updateAccountSettings(accountId, patch);
    if (!account) throw new PictorError(5403);
    return view(account);
  }
}
