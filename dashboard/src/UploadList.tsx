/** Per-file progress of the uploads started in this view, and each failure as the server gave it. */
export interface UploadItem {
  id: number;
  name: string;
  loaded: number;
  total: number;
  state: 'uploading' | 'done' | 'failed';
  message?: string;
}

function size(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

export function UploadList({ items, onDismiss }: { items: UploadItem[]; onDismiss: () => void }) {
  if (items.length === 0) return null;
  const finished = items.filter((item) => item.state !== 'uploading').length;
  return (
    <section class="uploads" aria-label="Uploads">
      <ul>
        {items.map((item) => (
          <li key={item.id} class={`upload ${item.state}`}>
            <span class="upload-name">{item.name}</span>
            <progress max={item.total || 1} value={item.loaded} aria-label={`Upload of ${item.name}`} />
            <span class="upload-state" role={item.state === 'failed' ? 'alert' : 'status'}>
              {item.state === 'uploading' && `${size(item.loaded)} of ${size(item.total)}`}
              {item.state === 'done' && 'Uploaded'}
              {item.state === 'failed' && `Failed: ${item.message ?? 'unknown error'}`}
            </span>
          </li>
        ))}
      </ul>
      {finished > 0 && (
        <button type="button" class="secondary small" onClick={onDismiss}>
          Clear finished uploads
        </button>
      )}
    </section>
  );
}
