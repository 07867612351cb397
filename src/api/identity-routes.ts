/**
 * Cloudflare's credential routes, as far as a Pictor credential has an answer: `GET /user/tokens/verify`
 * (is this token live?) and `GET /accounts` (which accounts may it use?). The dashboard signs in with
 * them, as any client written for Cloudflare can. A Pictor credential belongs to one account, so the
 * list holds that one; accounts have no name of their own, so theirs is made from the id.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccountService } from '../domain/accounts.js';
import type { Account, Credential } from '../domain/model.js';
import { PictorError } from '../errors.js';
import { success } from '../http/envelope.js';
import { routeSchemas } from '../http/schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The live credential the caller presented (set by the API's authentication hook). */
    credential?: Credential;
  }
  interface FastifyContextConfig {
    /** The route answers unknown credentials itself (tokens/verify: 401 code 1000, as Cloudflare). */
    answersUnknownCredentials?: boolean;
  }
}

export function accountName(account: Account): string {
  return `Pictor account ${account.id.slice(0, 8)}`;
}

function presented(request: FastifyRequest): Credential {
  if (!request.credential) throw new PictorError(10000);
  return request.credential;
}

export function registerIdentityRoutes(scope: FastifyInstance, accounts: AccountService): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/user/tokens/verify', { schema: routeSchemas.verifyToken, config: { answersUnknownCredentials: true } }, async (request) => {
    // Legacy key + email pairs are not tokens: Cloudflare refuses them here the same way.
    if (request.credential?.kind !== 'token') throw new PictorError(1000);
    return success({ id: request.credential.id, status: 'active' as const }, undefined, [
      { code: 10000, message: 'This API Token is valid and active' },
    ]);
  });

  app.get('/accounts', { schema: routeSchemas.listAccounts }, async (request) => {
    const { page = 1, per_page: perPage = 20, direction = 'asc', name } = request.query;
    const account = await accounts.findAccount(presented(request).accountId);
    const all = (account ? [account] : [])
      .filter((candidate) => name === undefined || accountName(candidate).toLowerCase().includes(name.toLowerCase()))
      .sort((a, b) => (direction === 'desc' ? -1 : 1) * accountName(a).localeCompare(accountName(b)));
    const slice = all.slice((page - 1) * perPage, page * perPage);
    return success(
      slice.map((candidate) => ({
        id: candidate.id,
        name: accountName(candidate),
        type: 'standard' as const,
        created_on: new Date(candidate.createdAt).toISOString(),
        settings: { enforce_twofactor: false, abuse_contact_email: null },
      })),
      { page, per_page: perPage, count: slice.length, total_count: all.length, total_pages: Math.ceil(all.length / perPage) },
    );
  });
}
