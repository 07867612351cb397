/**
 * Named variants: list, create, edit and delete, with a live preview on a chosen image, and the
 * account's flexible-variants switch. The preview of unsaved options is a flexible-variant URL, so it is
 * live only while flexible variants are on; otherwise it shows the saved variant.
 */
import { useEffect, useState } from 'preact/hooks';
import { type AccountApi, errorText, type Fit, type ImageRecord, type MetadataMode, type Variant } from './api';
import { type DeliveryContext, imageBase, loadDeliveryContext, previewUrl } from './delivery';
import { Feedback, useAction } from './Feedback';

const FITS: Fit[] = ['scale-down', 'contain', 'cover', 'crop', 'pad'];
const METADATA: MetadataMode[] = ['none', 'copyright', 'keep'];

interface Form {
  name: string;
  width: string;
  height: string;
  fit: Fit;
  metadata: MetadataMode;
  neverRequireSignedURLs: boolean;
}

const EMPTY: Form = { name: '', width: '', height: '', fit: 'scale-down', metadata: 'none', neverRequireSignedURLs: false };

function formOf(variant: Variant): Form {
  return {
    name: variant.id,
    width: variant.options.width === undefined ? '' : String(variant.options.width),
    height: variant.options.height === undefined ? '' : String(variant.options.height),
    fit: variant.options.fit,
    metadata: variant.options.metadata,
    neverRequireSignedURLs: variant.neverRequireSignedURLs,
  };
}

/** Numbers as typed; the server validates them and its message is shown when it refuses. */
function size(text: string): number | undefined {
  return text.trim() === '' ? undefined : Number(text);
}

function optionsOf(form: Form): Variant['options'] {
  const width = size(form.width);
  const height = size(form.height);
  return { fit: form.fit, metadata: form.metadata, ...(width !== undefined && { width }), ...(height !== undefined && { height }) };
}

function Preview({ form, editing, image, context }: { form: Form; editing: string | undefined; image: ImageRecord; context: DeliveryContext }) {
  const [src, setSrc] = useState<string | undefined>();
  useEffect(() => {
    const base = imageBase(image);
    if (base === undefined) return;
    let url: string | undefined;
    // Flexible options never apply to images that require signed URLs: they preview the saved variant.
    if (context.flexibleVariants && !image.requireSignedURLs) {
      const options = optionsOf(form);
      const parts = [options.width && `w=${options.width}`, options.height && `h=${options.height}`, `fit=${options.fit}`, `metadata=${options.metadata}`];
      url = `${base}/${parts.filter(Boolean).join(',')}`;
    } else if (editing !== undefined) {
      url = `${base}/${encodeURIComponent(editing)}`;
    }
    if (url === undefined) {
      setSrc(undefined);
      return;
    }
    void previewUrl(url, image, context).then(setSrc);
  }, [form, editing, image, context]);
  if (!src) {
    return image.requireSignedURLs ? <p>This image requires signed URLs: save the variant to preview it.</p> : <p>Turn on flexible variants for a live preview of unsaved options.</p>;
  }
  return <img class="variant-preview" src={src} alt="Variant preview" />;
}

export function VariantsView({ account }: { account: AccountApi }) {
  const [variants, setVariants] = useState<Variant[]>([]);
  const [context, setContext] = useState<DeliveryContext | undefined>();
  const [images, setImages] = useState<ImageRecord[]>([]);
  const [previewId, setPreviewId] = useState('');
  const [form, setForm] = useState<Form>(EMPTY);
  const [editing, setEditing] = useState<string | undefined>();
  const feedback = useAction();
  const { run, setError } = feedback;

  const reload = async (): Promise<void> => {
    const loaded = await loadDeliveryContext(account);
    setContext(loaded);
    setVariants(loaded.variants);
  };

  useEffect(() => {
    reload().catch((caught: unknown) => setError(errorText(caught)));
    account.list({ sortOrder: 'desc', creator: '', metaKey: '', metaValue: '', perPage: 50 }).then(
      (page) => {
        setImages(page.images);
        setPreviewId(page.images[0]?.id ?? '');
      },
      (caught: unknown) => setError(errorText(caught)),
    );
  }, [account]);

  const submit = (event: Event): Promise<void> => {
    event.preventDefault();
    const name = editing ?? form.name.trim();
    return run(
      async () => {
        if (editing === undefined) {
          await account.createVariant({ id: name, options: optionsOf(form), neverRequireSignedURLs: form.neverRequireSignedURLs });
        } else {
          await account.editVariant(editing, { options: optionsOf(form), neverRequireSignedURLs: form.neverRequireSignedURLs });
        }
        setForm(EMPTY);
        setEditing(undefined);
        await reload();
      },
      editing === undefined ? `Variant ${name} created` : `Variant ${name} saved`,
    );
  };

  const remove = async (variant: Variant): Promise<void> => {
    if (!confirm(`Delete the variant ${variant.id}? Its URLs stop working.`)) return;
    await run(async () => {
      await account.deleteVariant(variant.id);
      if (editing === variant.id) {
        setEditing(undefined);
        setForm(EMPTY);
      }
      await reload();
    }, `Variant ${variant.id} deleted`);
  };

  const toggleFlexible = (on: boolean): Promise<void> => {
    // The switch moves at once; the reload puts it back if the server refused.
    if (context) setContext({ ...context, flexibleVariants: on });
    return run(async () => {
      try {
        await account.editConfig({ flexible_variants: on });
      } finally {
        await reload();
      }
    }, on ? 'Flexible variants are on' : 'Flexible variants are off');
  };

  const previewImage = images.find((image) => image.id === previewId);

  return (
    <section aria-labelledby="variants-heading">
      <h1 id="variants-heading">Variants</h1>
      {/* Shown once the account's setting is known, so it never reads as "off" while loading. */}
      {context && (
        <label class="check">
          <input type="checkbox" checked={context.flexibleVariants} onChange={(event) => void toggleFlexible(event.currentTarget.checked)} />
          Flexible variants (resize options in the URL, such as <code>w=400,h=300</code>)
        </label>
      )}
      <Feedback feedback={feedback} />

      <div class="table-wrap">
        <table>
          <caption>Named variants</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Width</th>
              <th scope="col">Height</th>
              <th scope="col">Fit</th>
              <th scope="col">Metadata</th>
              <th scope="col">Signed URLs</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {variants.map((variant) => (
              <tr key={variant.id}>
                <th scope="row">{variant.id}</th>
                <td>{variant.options.width ?? '—'}</td>
                <td>{variant.options.height ?? '—'}</td>
                <td>{variant.options.fit}</td>
                <td>{variant.options.metadata}</td>
                <td>{variant.neverRequireSignedURLs ? 'never required' : 'as the image says'}</td>
                <td>
                  <div class="row-actions">
                    <button
                      type="button"
                      class="secondary small"
                      onClick={() => {
                        setEditing(variant.id);
                        setForm(formOf(variant));
                      }}
                    >
                      Edit
                    </button>
                    <button type="button" class="danger small" onClick={() => void remove(variant)}>
                      Delete
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <div class="variant-editor">
        <form onSubmit={submit} aria-labelledby="variant-form-heading">
          <h2 id="variant-form-heading">{editing === undefined ? 'New variant' : `Edit variant ${editing}`}</h2>
          <label>
            Name
            <input type="text" value={editing ?? form.name} disabled={editing !== undefined} onInput={(event) => setForm({ ...form, name: event.currentTarget.value })} />
          </label>
          <label>
            Width
            <input type="number" min={1} inputMode="numeric" value={form.width} onInput={(event) => setForm({ ...form, width: event.currentTarget.value })} />
          </label>
          <label>
            Height
            <input type="number" min={1} inputMode="numeric" value={form.height} onInput={(event) => setForm({ ...form, height: event.currentTarget.value })} />
          </label>
          <label>
            Fit
            <select value={form.fit} onChange={(event) => setForm({ ...form, fit: event.currentTarget.value as Fit })}>
              {FITS.map((fit) => (
                <option key={fit} value={fit}>
                  {fit}
                </option>
              ))}
            </select>
          </label>
          <label>
            Metadata
            <select value={form.metadata} onChange={(event) => setForm({ ...form, metadata: event.currentTarget.value as MetadataMode })}>
              {METADATA.map((mode) => (
                <option key={mode} value={mode}>
                  {mode}
                </option>
              ))}
            </select>
          </label>
          <label class="check">
            <input type="checkbox" checked={form.neverRequireSignedURLs} onChange={(event) => setForm({ ...form, neverRequireSignedURLs: event.currentTarget.checked })} />
            Never require signed URLs
          </label>
          <div class="actions">
            <button type="submit">{editing === undefined ? 'Create variant' : 'Save variant'}</button>
            {editing !== undefined && (
              <button
                type="button"
                class="secondary"
                onClick={() => {
                  setEditing(undefined);
                  setForm(EMPTY);
                }}
              >
                Cancel
              </button>
            )}
          </div>
        </form>
        <div class="preview-pane">
          <h2>Preview</h2>
          <label>
            Preview image
            <select value={previewId} onChange={(event) => setPreviewId(event.currentTarget.value)}>
              {images.length === 0 && <option value="">No images yet</option>}
              {images.map((image) => (
                <option key={image.id} value={image.id}>
                  {image.filename || image.id}
                </option>
              ))}
            </select>
          </label>
          {previewImage && context && <Preview form={form} editing={editing} image={previewImage} context={context} />}
        </div>
      </div>
    </section>
  );
}
