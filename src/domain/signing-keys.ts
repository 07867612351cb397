/**
 * Signing keys for private images' URLs. Any current key verifies a URL, so rotation is: add a key,
 * move signers over, delete the old one. Deleting the last key generates a new `default`.
 */
import { PictorError, badRequest } from '../errors.js';
import { generateSigningKeyValue } from './accounts.js';
import type { SigningKey } from './model.js';
import type { MetaStore } from '../store/ports.js';

export const MAX_SIGNING_KEYS = 10;
export const DEFAULT_KEY_NAME = 'default';
const NAME_PATTERN = /^[A-Za-z0-9]{1,20}$/;

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

  /** Creates `name` with a fresh value, or rotates it if it exists; returns all keys. */
  async put(accountId: string, name: string): Promise<SigningKeyView[]> {
    if (!NAME_PATTERN.test(name)) throw badRequest('Signing key name must be 1 to 20 letters and digits');
    await this.store.putSigningKey(this.newKey(accountId, name), MAX_SIGNING_KEYS);
    return this.list(accountId);
  }

  async delete(accountId: string, name: string): Promise<SigningKeyView[]> {
    const removed = await this.store.deleteSigningKey(accountId, name, this.newKey(accountId, DEFAULT_KEY_NAME));
    if (!removed) throw new PictorError(5404, 'Signing key not found');
    return this.list(accountId);
  }

  private newKey(accountId: string, name: string): SigningKey {
    return { accountId, name, value: generateSigningKeyValue(), createdAt: this.now() };
  }
}
