/** Routes for an account's variants, signing keys and delivery settings (`/images/v1/{variants,keys,config}`). */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { AccountSettingsService } from '../domain/account-settings.js';
import type { SigningKeyService } from '../domain/signing-keys.js';
import { type VariantService, variantView } from '../domain/variants.js';
import { success } from '../http/envelope.js';
import { routeSchemas } from '../http/schemas.js';

export interface AccountRouteServices {
  variants: VariantService;
  signingKeys: SigningKeyService;
  settings: AccountSettingsService;
}

export function registerAccountRoutes(scope: FastifyInstance, services: AccountRouteServices): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const base = '/accounts/:account_id/images/v1';
  const { variants, signingKeys, settings } = services;

  app.get(`${base}/variants`, { schema: routeSchemas.listVariants }, async (request) => {
    const all = await variants.list(request.params.account_id);
    return success({ variants: Object.fromEntries(all.map((v) => [v.name, variantView(v)])) });
  });
  app.post(`${base}/variants`, { schema: routeSchemas.createVariant }, async (request) => {
    return success({ variant: variantView(await variants.create(request.params.account_id, request.body)) });
  });
  app.get(`${base}/variants/:variant_id`, { schema: routeSchemas.getVariant }, async (request) => {
    return success({ variant: variantView(await variants.get(request.params.account_id, request.params.variant_id)) });
  });
  app.patch(`${base}/variants/:variant_id`, { schema: routeSchemas.editVariant }, async (request) => {
    const edited = await variants.edit(request.params.account_id, request.params.variant_id, request.body);
    return success({ variant: variantView(edited) });
  });
  app.delete(`${base}/variants/:variant_id`, { schema: routeSchemas.deleteVariant }, async (request) => {
    await variants.delete(request.params.account_id, request.params.variant_id);
    return success({});
  });

  app.get(`${base}/keys`, { schema: routeSchemas.listKeys }, async (request) => {
    return success({ keys: await signingKeys.list(request.params.account_id) });
  });
  app.put(`${base}/keys/:signing_key_name`, { schema: routeSchemas.putKey }, async (request) => {
    // The import extension: only an `images:import` credential sets the value; anyone else gets a new
    // random one, as on Cloudflare, whatever the body says.
    const value = request.credential?.permission === 'images:import' ? (request.body?.value ?? undefined) : undefined;
    return success({ keys: await signingKeys.put(request.params.account_id, request.params.signing_key_name, value) });
  });
  app.delete(`${base}/keys/:signing_key_name`, { schema: routeSchemas.deleteKey }, async (request) => {
    return success({ keys: await signingKeys.delete(request.params.account_id, request.params.signing_key_name) });
  });

  app.get(`${base}/config`, { schema: routeSchemas.getSettings }, async (request) => {
    return success(await settings.get(request.params.account_id));
  });
  app.patch(`${base}/config`, { schema: routeSchemas.editSettings }, async (request) => {
    return success(await settings.update(request.params.account_id, request.body));
  });
}
