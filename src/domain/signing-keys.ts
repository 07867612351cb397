/**
 * Signing keys for private images' URLs. Any current key verifies a URL, so rotation is: add a key,
 * move signers over, delete the old one. Deleting the last key generates a new `default`.
 * Both rules (at most 10 keys, never none) are checked with the account's writes serialised, so they
 * hold under concurrent requests on any number of nodes.
 */
import { PictorError, badRequest } from '../errors.js';
import { generateSigningKeyValue } from './accounts.js';
import type { SigningKey } from './model.js';
import type { MetaStore } from '../store/ports.js';

export const MAX_SIGNING_KEYS = 10;
export const DEFAULT_KEY_NAME = 'default';
const NAME_PATTERN = /^[A-Za-z0-9]{1,20}$/;
/** Values an import may bring (Cloudflare's are base64 of 32 bytes; HMAC takes any key bytes). */
const IMPORTED_VALUE_PATTERN = /^[\x21-\x7e]{16,256}$/;

export interface SigningKeyView {
  name: string;
  value: string;
}

export class SigningKeyService {
  constructor(
    private readonly store: MetaStore,
    private readonly now: () => number = Date.now,
  ) {}

  async list(accountId: string): Promise<SigningKeyView[]> {
    const keys = await this.store.listSigningKeys(accountId);
    return keys.map((key) => ({ name: key.name, value: key.value }));
  }

  /**
   * Creates `name` with a fresh value, or rotates it if it exists; returns all keys. `value` (the import
   * extension) gives the key a known value instead, so URLs signed elsewhere with it keep working.
   */
  async put(accountId: string, name: string, value?: string): Promise<SigningKeyView[]> {
    if (!NAME_PATTERN.test(name)) throw badRequest('Signing key name must be 1 to 20 letters and digits');
    if (value !== undefined && !IMPORTED_VALUE_PATTERN.test(value)) {
      throw badRequest('A signing key value must be 16 to 256 printable ASCII characters, without spaces');
    }
    const key = value === undefined ? this.newKey(accountId, name) : { accountId, name, value, createdAt: this.now() };
    await this.store.withAccountLocked(accountId, async (account) => {
      if (await account.rotateSigningKey(name, key.value)) return;
      if ((await account.countSigningKeys()) >= MAX_SIGNING_KEYS) {
        throw badRequest(`An account can have at most ${MAX_SIGNING_KEYS} signing keys`);
      }
      await account.insertSigningKey(key);
    });
    return this.list(accountId);
  }

  async delete(accountId: string, name: string): Promise<SigningKeyView[]> {
    const removed = await this.store.withAccountLocked(accountId, async (account) => {
      if (!(await account.deleteSigningKey(name))) return false;
      if ((await account.countSigningKeys()) === 0) await account.insertSigningKey(this.newKey(accountId, DEFAULT_KEY_NAME));
      return true;
    });
    if (!removed) throw new PictorError(5404, 'Signing key not found');
    return this.list(accountId);
  }

  private newKey(accountId: string, name: string): SigningKey {
    return { accountId, name, value: generateSigningKeyValue(), createdAt: this.now() };
  }
}
