/** Routes for an account's variants, signing keys and delivery settings (`/images/v1/{variants,keys,config}`). */
import type { FastifyInstance } from 'fastify';
import type { AccountSettingsService } from '../domain/account-settings.js';
import type { SigningKeyService } from '../domain/signing-keys.js';
import { type VariantService, variantView } from '../domain/variants.js';
import { success } from './envelope.js';

type AccountParams = { account_id: string };
type NamedParams = AccountParams & { name: string };

export interface AccountRouteServices {
  variants: VariantService;
  signingKeys: SigningKeyService;
  settings: AccountSettingsService;
}

export function registerAccountRoutes(app: FastifyInstance, services: AccountRouteServices): void {
  const base = '/accounts/:account_id/images/v1';
  const { variants, signingKeys, settings } = services;

  app.get<{ Params: AccountParams }>(`${base}/variants`, async (request) => {
    const all = await variants.list(request.params.account_id);
    return success({ variants: Object.fromEntries(all.map((v) => [v.name, variantView(v)])) });
  });
  app.post<{ Params: AccountParams }>(`${base}/variants`, async (request) => {
    return success({ variant: variantView(await variants.create(request.params.account_id, request.body)) });
  });
  app.get<{ Params: NamedParams }>(`${base}/variants/:name`, async (request) => {
    return success({ variant: variantView(await variants.get(request.params.account_id, request.params.name)) });
  });
  app.patch<{ Params: NamedParams }>(`${base}/variants/:name`, async (request) => {
    const edited = await variants.edit(request.params.account_id, request.params.name, request.body);
    return success({ variant: variantView(edited) });
  });
  app.delete<{ Params: NamedParams }>(`${base}/variants/:name`, async (request) => {
    await variants.delete(request.params.account_id, request.params.name);
    return success({});
  });

  app.get<{ Params: AccountParams }>(`${base}/keys`, async (request) => {
    return success({ keys: await signingKeys.list(request.params.account_id) });
  });
  app.put<{ Params: NamedParams }>(`${base}/keys/:name`, async (request) => {
    return success({ keys: await signingKeys.put(request.params.account_id, request.params.name) });
  });
  app.delete<{ Params: NamedParams }>(`${base}/keys/:name`, async (request) => {
    return success({ keys: await signingKeys.delete(request.params.account_id, request.params.name) });
  });

  app.get<{ Params: AccountParams }>(`${base}/config`, async (request) => {
    return success(await settings.get(request.params.account_id));
  });
  app.patch<{ Params: AccountParams }>(`${base}/config`, async (request) => {
    return success(await settings.update(request.params.account_id, request.body));
  });
}
