/**
 * One image in a modal dialog: the original's size, format and dimensions (read from its blob), id and
 * upload time, every variant's URL and preview, editable metadata, the signed-URL switch and deletion.
 * Every change goes through the account API; what the server refuses is shown as it said it.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { type AccountApi, errorText, type ImageRecord } from './api';
import { CopyButton } from './CopyButton';
import { type DeliveryContext, previewUrl, signedPreviewUrl, variantNameOf } from './delivery';
import { Feedback, useAction } from './Feedback';

interface Original {
  size: number;
  type: string;
  width?: number;
  height?: number;
}

const FORMATS: Record<string, string> = {
  'image/jpeg': 'JPEG',
  'image/png': 'PNG',
  'image/webp': 'WebP',
  'image/gif': 'GIF',
  'image/avif': 'AVIF',
  'image/svg+xml': 'SVG',
};

async function describeOriginal(blob: Blob): Promise<Original> {
  const url = URL.createObjectURL(blob);
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    return { size: blob.size, type: blob.type, width: image.naturalWidth, height: image.naturalHeight };
  } catch {
    return { size: blob.size, type: blob.type };
  } finally {
    URL.revokeObjectURL(url);
  }
}

function bytes(size: number): string {
  const text = size >= 1024 * 1024 ? `${(size / (1024 * 1024)).toFixed(2)} MB` : `${(size / 1024).toFixed(1)} KB`;
  return `${text} (${size.toLocaleString()} bytes)`;
}

function VariantPreview({ url, image, context }: { url: string; image: ImageRecord; context: DeliveryContext }) {
  const [src, setSrc] = useState<string | undefined>();
  useEffect(() => {
    void previewUrl(url, image, context).then(setSrc);
  }, [url, image, context]);
  const name = variantNameOf(url);
  return (
    <li class="variant-url">
      <span class="variant-name">{name}</span>
      <input type="text" readOnly value={url} aria-label={`URL of variant ${name}`} />
      <CopyButton text={url} label={`Copy URL of variant ${name}`} />
      {src ? <img src={src} alt={`Preview of variant ${name}`} loading="lazy" /> : <span>No preview: the image needs a signing key to be shown.</span>}
    </li>
  );
}

export function ImageDetail(props: {
  account: AccountApi;
  image: ImageRecord;
  context: DeliveryContext;
  onClose: () => void;
  onChanged: (image: ImageRecord) => void;
  onDeleted: (id: string) => void;
}) {
  const { account, image, context } = props;
  const dialog = useRef<HTMLDialogElement>(null);
  const [original, setOriginal] = useState<Original | undefined>();
  const [metadata, setMetadata] = useState(JSON.stringify(image.meta, null, 2));
  const feedback = useAction();
  const { run, setError } = feedback;
  const [signedUrl, setSignedUrl] = useState<string | undefined>();
  // The switch moves at once; it moves back if the server refuses.
  const [requireSigned, setRequireSigned] = useState(image.requireSignedURLs);
  const name = image.filename || image.id;

  useEffect(() => {
    dialog.current?.showModal();
  }, []);

  useEffect(() => {
    account
      .original(image.id)
      .then(describeOriginal)
      .then(setOriginal, (caught: unknown) => setError(errorText(caught)));
  }, [account, image.id]);

  useEffect(() => {
    if (image.requireSignedURLs) void signedPreviewUrl(image, context).then(setSignedUrl);
    else setSignedUrl(undefined);
  }, [image, context]);

  const saveMetadata = (event: Event): Promise<void> => {
    event.preventDefault();
    return run(async () => {
      let parsed: unknown;
      try {
        parsed = metadata.trim() === '' ? {} : JSON.parse(metadata);
      } catch (caught) {
        throw new Error(`Metadata is not valid JSON: ${errorText(caught)}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('Metadata must be a JSON object, such as {"key": "value"}');
      props.onChanged(await account.editImage(image.id, { metadata: parsed as Record<string, unknown> }));
    }, 'Metadata saved');
  };

  const toggleSigned = (requireSignedURLs: boolean): Promise<void> => {
    setRequireSigned(requireSignedURLs);
    return run(
      async () => {
        try {
          props.onChanged(await account.editImage(image.id, { requireSignedURLs }));
        } catch (caught) {
          setRequireSigned(!requireSignedURLs);
          throw caught;
        }
      },
      requireSignedURLs ? 'Signed URLs are now required' : 'Signed URLs are no longer required',
    );
  };

  const remove = (): Promise<void> =>
    run(async () => {
      if (!confirm(`Delete ${name}? Its original and every rendition are removed; this cannot be undone.`)) return;
      await account.deleteImage(image.id);
      dialog.current?.close();
      props.onDeleted(image.id);
    }, '');

  return (
    <dialog ref={dialog} class="detail" aria-labelledby="detail-heading" onClose={props.onClose}>
      <div class="detail-head">
        <h2 id="detail-heading">{name}</h2>
        <button type="button" class="secondary" onClick={() => dialog.current?.close()}>
          Close
        </button>
      </div>
      <dl class="facts">
        <dt>ID</dt>
        <dd>
          <code>{image.id}</code> <CopyButton text={image.id} label="Copy image ID" />
        </dd>
        <dt>Uploaded</dt>
        <dd>
          <time dateTime={image.uploaded}>{new Date(image.uploaded).toLocaleString()}</time>
        </dd>
        <dt>Size</dt>
        <dd>{original ? bytes(original.size) : '…'}</dd>
        <dt>Format</dt>
        <dd>{original ? (FORMATS[original.type] ?? original.type) : '…'}</dd>
        <dt>Dimensions</dt>
        <dd>{original?.width !== undefined ? `${original.width} × ${original.height} px` : original ? 'unknown' : '…'}</dd>
        {image.creator !== null && (
          <>
            <dt>Creator</dt>
            <dd>{image.creator}</dd>
          </>
        )}
      </dl>

      <Feedback feedback={feedback} />

      <form onSubmit={saveMetadata} class="metadata">
        <label>
          Metadata
          <textarea rows={5} spellcheck={false} value={metadata} onInput={(event) => setMetadata(event.currentTarget.value)} />
        </label>
        <button type="submit">Save</button>
      </form>

      <label class="check">
        <input type="checkbox" checked={requireSigned} onChange={(event) => void toggleSigned(event.currentTarget.checked)} />
        Require signed URLs
      </label>
      {image.requireSignedURLs && (
        <div class="signed">
          {signedUrl ? (
            <>
              <label>
                Signed preview URL (valid for an hour)
                <input type="text" readOnly value={signedUrl} />
              </label>
              <CopyButton text={signedUrl} label="Copy signed preview URL" />
            </>
          ) : (
            <p>No signing key can be read with this credential, so no signed URL can be made here.</p>
          )}
        </div>
      )}

      <h3>Variants</h3>
      <ul class="variant-urls">
        {image.variants.map((url) => (
          <VariantPreview key={url} url={url} image={image} context={context} />
        ))}
      </ul>

      <div class="danger">
        <button type="button" class="danger" onClick={() => void remove()}>
          Delete
        </button>
      </div>
    </dialog>
  );
}
