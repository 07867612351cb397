/**
 * Accounts and their credentials. Secrets (API tokens, legacy API keys) are stored only as SHA-256
 * hashes; they are high-entropy, so a fast hash is enough, and lookups compare in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ACCOUNT_ID_PATTERN } from '../config.js';
import { PictorError, badRequest } from '../errors.js';
import { generateAccountHash, generateAccountId } from './ids.js';
import type { Account, AccountSettings, Credential, Permission, Variant } from './model.js';
import type { MetaStore } from '../store/ports.js';

export const DEFAULT_ACCOUNT_SETTINGS: AccountSettings = { flexibleVariants: false, browserTtl: 172_800 };

/** Cloudflare's built-in variant, created with every account. */
export const PUBLIC_VARIANT_OPTIONS = { fit: 'scale-down', width: 1366, height: 768, metadata: 'none' } as const;

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

function generateSecret(): string {
  // 40 chars from [A-Za-z0-9_-], like the length of a Cloudflare API token.
  return randomBytes(30).toString('base64url');
}

/** 32 random bytes as base64: the value of a signing key. */
export function generateSigningKeyValue(): string {
  return randomBytes(32).toString('base64');
}

export type PresentedCredential = { kind: 'token'; token: string } | { kind: 'key'; email: string; key: string };

export interface IssuedCredential {
  credential: Credential;
  /** The secret, shown once: the only time it exists outside a hash. */
  secret: string;
}

export const PERMISSIONS: readonly Permission[] = ['images:read', 'images:write', 'images:import'];
const PERMISSION_RANK: Record<Permission, number> = { 'images:read': 0, 'images:write': 1, 'images:import': 2 };

export function parsePermission(text: string): Permission {
  const permission = PERMISSIONS.find((p) => p === text);
  if (!permission) throw badRequest(`Permission must be one of ${PERMISSIONS.join(', ')}`);
  return permission;
}

/** Import implies write, write implies read. */
export function permits(granted: Permission, needed: Permission): boolean {
  return PERMISSION_RANK[granted] >= PERMISSION_RANK[needed];
}

export class AccountService {
  constructor(
    private readonly store: MetaStore,
    private readonly now: () => number = Date.now,
  ) {}

  async createAccount(requestedId?: string): Promise<Account> {
    const id = requestedId ?? generateAccountId();
    if (!ACCOUNT_ID_PATTERN.test(id)) throw badRequest('Account id must be 32 lowercase hexadecimal characters');
    if (await this.store.findAccount(id)) throw new PictorError(5409, `Account ${id} already exists`);
    const createdAt = this.now();
    const account: Account = { id, hash: generateAccountHash(), createdAt, ...DEFAULT_ACCOUNT_SETTINGS };
    const variant: Variant = {
      accountId: id,
      name: 'public',
      options: { ...PUBLIC_VARIANT_OPTIONS },
      neverRequireSignedUrls: false,
      version: 1,
    };
    const signingKey = { accountId: id, name: 'default', value: generateSigningKeyValue(), createdAt };
    await this.store.createAccount(account, { variant, signingKey });
    return account;
  }

  findAccount(id: string): Promise<Account | undefined> {
    return this.store.findAccount(id);
  }

  listAccounts(): Promise<Account[]> {
    return this.store.listAccounts();
  }

  /**
   * Issues an API token (or, with `email`, a legacy API key for X-Auth-Email + X-Auth-Key).
   * `secret` lets automation choose the value (PICTOR_BOOTSTRAP_TOKEN); otherwise it is random.
   */
  async issueCredential(options: {
    accountId: string;
    permission: Permission;
    name?: string;
    email?: string;
    secret?: string;
  }): Promise<IssuedCredential> {
    if (!(await this.store.findAccount(options.accountId))) {
      throw badRequest(`No account with id ${options.accountId}`);
    }
    const secret = options.secret ?? generateSecret();
    const kind = options.email === undefined ? 'token' : 'key';
    const credential: Credential = {
      id: randomBytes(16).toString('hex'),
      accountId: options.accountId,
      kind,
      email: options.email ?? null,
      name: options.name ?? (kind === 'token' ? 'API token' : 'API key'),
      permission: options.permission,
      createdAt: this.now(),
      revokedAt: null,
    };
    await this.store.createCredential(credential, hashSecret(this.secretMaterial(credential.kind, secret, credential.email)));
    return { credential, secret };
  }

  listCredentials(accountId?: string): Promise<Credential[]> {
    return this.store.listCredentials(accountId);
  }

  revokeCredential(credentialId: string): Promise<boolean> {
    return this.store.revokeCredential(credentialId, this.now());
  }

  /** Legacy keys are bound to their email: the hash covers both, so a key only works with its email. */
  private secretMaterial(kind: Credential['kind'], secret: string, email: string | null): string {
    return kind === 'key' ? `key:${(email ?? '').toLowerCase()}:${secret}` : `token:${secret}`;
  }

  /** The live credential matching what the client presented, or undefined. Reads the store every time,
   * so revocations by the CLI take effect immediately. */
  async authenticate(presented: PresentedCredential): Promise<Credential | undefined> {
    const material =
      presented.kind === 'token'
        ? this.secretMaterial('token', presented.token, null)
        : this.secretMaterial('key', presented.key, presented.email);
    const presentedHash = hashSecret(material);
    const found = await this.store.findCredentialBySecretHash(presentedHash);
    if (!found) return undefined;
    const equal = timingSafeEqual(Buffer.from(found.secretHash, 'hex'), Buffer.from(presentedHash, 'hex'));
    return equal && found.credential.kind === presented.kind ? found.credential : undefined;
  }

  /**
   * Makes sure the bootstrap account and a read+write token with the given value exist
   * (PICTOR_BOOTSTRAP_ACCOUNT_ID / PICTOR_BOOTSTRAP_TOKEN). Idempotent.
   */
  async ensureBootstrap(accountId: string, token: string): Promise<void> {
    if (!(await this.store.findAccount(accountId))) await this.createAccount(accountId);
    const existing = await this.authenticate({ kind: 'token', token });
    if (existing?.accountId === accountId && existing.permission === 'images:write') return;
    if (existing) throw badRequest('PICTOR_BOOTSTRAP_TOKEN is already in use by another account or permission');
    await this.issueCredential({ accountId, permission: 'images:write', name: 'bootstrap', secret: token });
  }
}
