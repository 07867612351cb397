/**
 * Route schemas of the account API (TypeBox, i.e. plain JSON Schema). They do three jobs at once: Fastify
 * validates params, query strings and JSON bodies with them before a handler runs (failures become 5400),
 * handlers receive their static types, and `/client/v4/openapi.json` is generated from them.
 *
 * Response schemas document the wire; replies are still written with JSON.stringify (see plugin.ts), so
 * a schema can never drop a field the SDK reads. A test checks real replies against them.
 */
import { type Static, type TSchema, Type } from 'typebox';
import { BROWSER_TTL_RANGE, MAX_VARIANT_SIDE, METADATA_MODES, VARIANT_FITS } from '../domain/variants.js';

/** User metadata: any JSON object (size and content rules live in the domain). */
const Metadata = Type.Record(Type.String(), Type.Unknown(), { description: 'Arbitrary JSON object, at most 1024 bytes' });

// ---------- envelope ----------

const Message = Type.Object({ code: Type.Integer(), message: Type.String() });
const ErrorItem = Type.Object({
  code: Type.Integer(),
  message: Type.String(),
  error_chain: Type.Optional(Type.Array(Message)),
});

/** Cloudflare's `{success, errors, messages, result}` around a result. */
export function Envelope<T extends TSchema>(result: T, resultInfo?: TSchema) {
  return Type.Object({
    success: Type.Literal(true),
    errors: Type.Array(ErrorItem),
    messages: Type.Array(Message),
    result,
    ...(resultInfo !== undefined && { result_info: resultInfo }),
  });
}

export const ErrorEnvelope = Type.Object(
  {
    success: Type.Literal(false),
    errors: Type.Array(ErrorItem, { minItems: 1 }),
    messages: Type.Array(Message),
    result: Type.Null(),
  },
  { description: 'Cloudflare error envelope; `errors[0].code` is the Cloudflare error code' },
);

/** Every route answers errors in the same envelope. */
export function replies(ok: TSchema) {
  return { 200: ok, '4XX': ErrorEnvelope, '5XX': ErrorEnvelope };
}

// ---------- params ----------

export const AccountParams = Type.Object({ account_id: Type.String({ description: 'Account identifier' }) });
export type AccountParams = Static<typeof AccountParams>;

export const ImageParams = Type.Object({
  account_id: Type.String(),
  image_id: Type.String({ description: 'Image id; custom ids may contain "/" (percent-encoded or raw)' }),
});
export type ImageParams = Static<typeof ImageParams>;

export const VariantParams = Type.Object({ account_id: Type.String(), variant_id: Type.String() });
export type VariantParams = Static<typeof VariantParams>;

export const KeyParams = Type.Object({ account_id: Type.String(), signing_key_name: Type.String() });
export type KeyParams = Static<typeof KeyParams>;

// ---------- images ----------

export const Image = Type.Object({
  id: Type.String(),
  filename: Type.String(),
  uploaded: Type.String({ format: 'date-time' }),
  requireSignedURLs: Type.Boolean(),
  variants: Type.Array(Type.String({ format: 'uri' })),
  meta: Metadata,
  creator: Type.Union([Type.String(), Type.Null()]),
  draft: Type.Optional(Type.Literal(true)),
});

/** Multipart fields of an upload (the body is streamed, so this documents rather than validates). */
const UploadForm = Type.Object({
  file: Type.Optional(Type.String({ contentMediaType: 'application/octet-stream', description: 'The image (at most 10 MiB)' })),
  url: Type.Optional(Type.String({ format: 'uri', description: 'Fetch the image from this URL instead of sending a file' })),
  id: Type.Optional(Type.String({ description: 'Custom id (at most 1024 characters)' })),
  metadata: Type.Optional(Type.String({ description: 'JSON object, as a string; bracket fields metadata[key] are accepted too' })),
  requireSignedURLs: Type.Optional(Type.String({ enum: ['true', 'false'] })),
  creator: Type.Optional(Type.String()),
});

export const ImageEditBody = Type.Union([
  Type.Object(
    {
      metadata: Type.Optional(Metadata),
      requireSignedURLs: Type.Optional(Type.Boolean()),
      creator: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    },
    { additionalProperties: true },
  ),
  Type.Null(),
]);
export type ImageEditBody = Static<typeof ImageEditBody>;

export const V1ListQuery = Type.Object(
  {
    page: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
    per_page: Type.Optional(Type.Integer({ minimum: 1, default: 100, description: 'Values above 100 are clamped to 100' })),
    creator: Type.Optional(Type.String({ description: 'Only images of this creator; empty for images without one' })),
  },
  { additionalProperties: true },
);
export type V1ListQuery = Static<typeof V1ListQuery>;

export const V2ListQuery = Type.Object(
  {
    per_page: Type.Optional(Type.Integer({ minimum: 1, default: 1000, description: 'Values above 10000 are clamped to 10000' })),
    sort_order: Type.Optional(Type.String({ enum: ['asc', 'desc'], default: 'desc' })),
    continuation_token: Type.Optional(Type.String()),
    creator: Type.Optional(Type.String()),
  },
  {
    additionalProperties: true,
    patternProperties: {
      '^meta\\.': Type.String({ description: 'Metadata filter meta.<field>[<operator>]=<value>; operators eq, ne, gt, gte, lt, lte, in, nin, exists' }),
    },
  },
);
export type V2ListQuery = Static<typeof V2ListQuery>;

export const ListInfo = Type.Object({
  page: Type.Integer(),
  per_page: Type.Integer(),
  count: Type.Integer(),
  total_count: Type.Integer(),
});

// ---------- variants, keys, config ----------

const VariantOptions = Type.Object(
  {
    fit: Type.Optional(Type.String({ enum: [...VARIANT_FITS], default: 'scale-down' })),
    width: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_VARIANT_SIDE })),
    height: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_VARIANT_SIDE })),
    metadata: Type.Optional(Type.String({ enum: [...METADATA_MODES], default: 'none' })),
    browser_ttl: Type.Optional(Type.Integer({ minimum: BROWSER_TTL_RANGE.min, maximum: BROWSER_TTL_RANGE.max })),
  },
  { additionalProperties: false },
);

export const VariantCreateBody = Type.Object({
  id: Type.String({ pattern: '^[A-Za-z0-9]{1,99}$' }),
  options: VariantOptions,
  neverRequireSignedURLs: Type.Optional(Type.Boolean()),
});
export type VariantCreateBody = Static<typeof VariantCreateBody>;

export const VariantEditBody = Type.Object({
  options: Type.Optional(VariantOptions),
  neverRequireSignedURLs: Type.Optional(Type.Boolean()),
});
export type VariantEditBody = Static<typeof VariantEditBody>;

const Variant = Type.Object({
  id: Type.String(),
  options: VariantOptions,
  neverRequireSignedURLs: Type.Boolean(),
});

/** `PUT …/keys/{name}` takes no body on Cloudflare; an `images:import` credential may give the value. */
export const KeyPutBody = Type.Union([
  Type.Object({ value: Type.Optional(Type.String({ description: 'The key value (only with images:import; ignored otherwise)' })) }, { additionalProperties: true }),
  Type.Null(),
]);
export type KeyPutBody = Static<typeof KeyPutBody>;

const SigningKeys = Type.Object({ keys: Type.Array(Type.Object({ name: Type.String(), value: Type.String() })) });

export const SettingsBody = Type.Object(
  {
    flexible_variants: Type.Optional(Type.Boolean()),
    browser_ttl: Type.Optional(Type.Integer({ minimum: BROWSER_TTL_RANGE.min, maximum: BROWSER_TTL_RANGE.max })),
  },
  { additionalProperties: false },
);
export type SettingsBody = Static<typeof SettingsBody>;

const Settings = Type.Object({ flexible_variants: Type.Boolean(), browser_ttl: Type.Integer() });

// ---------- direct uploads ----------

/** JSON form of a direct-upload request (the SDK sends the same fields as multipart). */
export const DirectUploadJson = Type.Object(
  {
    id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    creator: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    expiry: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
    metadata: Type.Optional(Metadata),
    requireSignedURLs: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);
export type DirectUploadJson = Static<typeof DirectUploadJson>;

const DirectUploadForm = Type.Object({
  id: Type.Optional(Type.String()),
  creator: Type.Optional(Type.String()),
  expiry: Type.Optional(Type.String({ format: 'date-time', description: '2 minutes to 6 hours from now; default 30 minutes' })),
  metadata: Type.Optional(Type.String({ description: 'JSON object, as a string' })),
  requireSignedURLs: Type.Optional(Type.String({ enum: ['true', 'false'] })),
});

const DirectUploadResult = Type.Object({ id: Type.String(), uploadURL: Type.String({ format: 'uri' }) });

const UploadHostForm = Type.Object({
  file: Type.String({ contentMediaType: 'application/octet-stream', description: 'The image (at most 10 MiB)' }),
});

// ---------- credentials and accounts ----------

const TokenStatus = Type.Object({
  id: Type.String({ description: 'The token identifier' }),
  status: Type.Literal('active'),
});

export const AccountListQuery = Type.Object(
  {
    page: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
    per_page: Type.Optional(Type.Integer({ minimum: 5, maximum: 50, default: 20 })),
    direction: Type.Optional(Type.String({ enum: ['asc', 'desc'], default: 'asc' })),
    name: Type.Optional(Type.String({ description: 'Only accounts whose name contains this' })),
  },
  { additionalProperties: true },
);
export type AccountListQuery = Static<typeof AccountListQuery>;

const AccountSummary = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.Literal('standard'),
  created_on: Type.String({ format: 'date-time' }),
  settings: Type.Object({ enforce_twofactor: Type.Boolean(), abuse_contact_email: Type.Null() }),
});

const AccountListInfo = Type.Object({
  page: Type.Integer(),
  per_page: Type.Integer(),
  count: Type.Integer(),
  total_count: Type.Integer(),
  total_pages: Type.Integer(),
});

// ---------- route schemas ----------

const images = ['Images'];
const identity = ['Credentials and accounts'];
const accountTags = ['Variants', 'Signing keys', 'Delivery settings'] as const;

/**
 * Keys Fastify reads from `schema`, plus the OpenAPI extras @fastify/swagger copies. Bodies given per
 * media type (`content`) are validated per media type; multipart ones only document (validation.ts).
 */
export const routeSchemas = {
  batchToken: {
    tags: images,
    summary: 'Mint a batch token (for the batch host, without the account in the path)',
    operationId: 'images-batch-token',
    params: AccountParams,
    response: replies(Envelope(Type.Object({ token: Type.String(), expiresAt: Type.String({ format: 'date-time' }) }))),
  },
  verifyToken: {
    tags: identity,
    summary: 'Check the API token presented (the dashboard signs in with it)',
    operationId: 'user-tokens-verify',
    response: replies(Envelope(TokenStatus)),
  },
  listAccounts: {
    tags: identity,
    summary: 'Accounts the presented credential may use',
    operationId: 'accounts-list',
    querystring: AccountListQuery,
    response: replies(Envelope(Type.Array(AccountSummary), AccountListInfo)),
  },
  upload: {
    tags: images,
    summary: 'Upload an image (file or URL)',
    operationId: 'images-upload',
    params: AccountParams,
    body: { content: { 'multipart/form-data': { schema: UploadForm } } },
    response: replies(Envelope(Image)),
  },
  listV1: {
    tags: images,
    summary: 'List images (pages)',
    operationId: 'images-list-v1',
    params: AccountParams,
    querystring: V1ListQuery,
    response: replies(Envelope(Type.Object({ images: Type.Array(Image) }), ListInfo)),
  },
  listV2: {
    tags: images,
    summary: 'List images (continuation tokens, metadata filters)',
    operationId: 'images-list-v2',
    params: AccountParams,
    querystring: V2ListQuery,
    response: replies(Envelope(Type.Object({ images: Type.Array(Image), continuation_token: Type.Union([Type.String(), Type.Null()]) }))),
  },
  stats: {
    tags: images,
    summary: 'Image count and quota',
    operationId: 'images-stats',
    params: AccountParams,
    response: replies(Envelope(Type.Object({ count: Type.Object({ allowed: Type.Integer(), current: Type.Integer() }) }))),
  },
  getImage: {
    tags: images,
    summary: 'Image details',
    operationId: 'images-get',
    params: ImageParams,
    response: replies(Envelope(Image)),
  },
  getBlob: {
    tags: images,
    summary: 'The original bytes as uploaded',
    operationId: 'images-blob',
    params: ImageParams,
    produces: ['image/*'],
    response: {
      200: Type.String({ contentMediaType: 'application/octet-stream', description: 'The original image' }),
      '4XX': ErrorEnvelope,
      '5XX': ErrorEnvelope,
    },
  },
  editImage: {
    tags: images,
    summary: 'Update metadata, creator or requireSignedURLs',
    operationId: 'images-edit',
    params: ImageParams,
    body: ImageEditBody,
    response: replies(Envelope(Image)),
  },
  deleteImage: {
    tags: images,
    summary: 'Delete an image',
    operationId: 'images-delete',
    params: ImageParams,
    response: replies(Envelope(Type.Object({}))),
  },
  directUpload: (version: 'v1' | 'v2') => ({
    tags: ['Direct uploads'],
    summary: version === 'v2' ? 'Create a one-time upload URL' : 'Create a one-time upload URL (legacy v1 path)',
    operationId: `direct-upload-${version}`,
    params: AccountParams,
    body: {
      content: {
        'multipart/form-data': { schema: DirectUploadForm },
        'application/json': { schema: Type.Union([DirectUploadJson, Type.Null()]) },
      },
    },
    response: replies(Envelope(DirectUploadResult)),
  }),
  listVariants: {
    tags: [accountTags[0]],
    summary: 'List variants',
    operationId: 'variants-list',
    params: AccountParams,
    response: replies(Envelope(Type.Object({ variants: Type.Record(Type.String(), Variant) }))),
  },
  createVariant: {
    tags: [accountTags[0]],
    summary: 'Create a variant',
    operationId: 'variants-create',
    params: AccountParams,
    body: VariantCreateBody,
    response: replies(Envelope(Type.Object({ variant: Variant }))),
  },
  getVariant: {
    tags: [accountTags[0]],
    summary: 'Variant details',
    operationId: 'variants-get',
    params: VariantParams,
    response: replies(Envelope(Type.Object({ variant: Variant }))),
  },
  editVariant: {
    tags: [accountTags[0]],
    summary: 'Update a variant (options are merged, then validated whole)',
    operationId: 'variants-edit',
    params: VariantParams,
    body: VariantEditBody,
    response: replies(Envelope(Type.Object({ variant: Variant }))),
  },
  deleteVariant: {
    tags: [accountTags[0]],
    summary: 'Delete a variant (the built-in "public" stays)',
    operationId: 'variants-delete',
    params: VariantParams,
    response: replies(Envelope(Type.Object({}))),
  },
  listKeys: {
    tags: [accountTags[1]],
    summary: 'List signing keys',
    operationId: 'keys-list',
    params: AccountParams,
    response: replies(Envelope(SigningKeys)),
  },
  putKey: {
    tags: [accountTags[1]],
    summary: 'Create or rotate a signing key',
    operationId: 'keys-put',
    params: KeyParams,
    body: KeyPutBody,
    response: replies(Envelope(SigningKeys)),
  },
  deleteKey: {
    tags: [accountTags[1]],
    summary: 'Delete a signing key',
    operationId: 'keys-delete',
    params: KeyParams,
    response: replies(Envelope(SigningKeys)),
  },
  getSettings: {
    tags: [accountTags[2]],
    summary: 'Flexible variants and browser TTL',
    operationId: 'config-get',
    params: AccountParams,
    response: replies(Envelope(Settings)),
  },
  editSettings: {
    tags: [accountTags[2]],
    summary: 'Update flexible variants and browser TTL',
    operationId: 'config-edit',
    params: AccountParams,
    body: SettingsBody,
    response: replies(Envelope(Settings)),
  },
  uploadHost: {
    tags: ['Direct uploads'],
    summary: 'Send the image to a one-time upload URL (no credentials; CORS)',
    operationId: 'upload-host',
    security: [],
    params: Type.Object({ account_hash: Type.String(), token: Type.String() }),
    body: { content: { 'multipart/form-data': { schema: UploadHostForm } } },
    response: replies(Envelope(Image)),
  },
};
