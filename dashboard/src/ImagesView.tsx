/**
 * Images: the account's count, filters (creator, one metadata condition), sort order, uploads (file
 * input and drag-and-drop onto the grid) and the grid itself, over the v2 list with continuation tokens,
 * loading more as the end of the grid scrolls into view.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { type AccountApi, errorText, type ImageRecord } from './api';
import { type DeliveryContext, loadDeliveryContext, thumbnailUrl } from './delivery';
import { ErrorNote } from './ErrorNote';
import { ImageDetail } from './ImageDetail';
import { UploadList, type UploadItem } from './UploadList';
import { uploadFile } from './uploads';

interface Filters {
  sortOrder: 'asc' | 'desc';
  creator: string;
  metaKey: string;
  metaValue: string;
}

const NO_FILTERS: Filters = { sortOrder: 'desc', creator: '', metaKey: '', metaValue: '' };
const THUMBNAIL_SIZE = 240;

function Tile({ image, context, onOpen }: { image: ImageRecord; context: DeliveryContext; onOpen: () => void }) {
  const [src, setSrc] = useState<string | undefined>();
  useEffect(() => {
    let live = true;
    void thumbnailUrl(image, context, THUMBNAIL_SIZE).then((url) => live && setSrc(url));
    return () => {
      live = false;
    };
  }, [image, context]);
  const name = image.filename || image.id;
  return (
    <li class="tile">
      <button type="button" onClick={onOpen} title={name}>
        {src ? <img src={src} alt={name} loading="lazy" width={THUMBNAIL_SIZE} height={THUMBNAIL_SIZE} /> : <span class="tile-placeholder" role="img" aria-label={name} />}
        <span class="tile-name" aria-hidden="true">
          {name}
        </span>
      </button>
    </li>
  );
}

export function ImagesView({ account }: { account: AccountApi }) {
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const [images, setImages] = useState<ImageRecord[]>([]);
  const [token, setToken] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [stats, setStats] = useState<{ allowed: number; current: number } | undefined>();
  const [context, setContext] = useState<DeliveryContext | undefined>();
  const [uploads, setUploads] = useState<UploadItem[]>([]);
  const [open, setOpen] = useState<ImageRecord | undefined>();
  const [dragging, setDragging] = useState(false);
  const sentinel = useRef<HTMLDivElement>(null);
  // The list request in progress; a newer one (other filters) makes older answers stale.
  const generation = useRef(0);

  const refreshStats = useCallback(() => {
    account.stats().then(setStats, (caught: unknown) => setError(errorText(caught)));
  }, [account]);

  const load = useCallback(
    async (reset: boolean) => {
      const mine = reset ? ++generation.current : generation.current;
      setLoading(true);
      try {
        const page = await account.list({ ...filters, continuationToken: reset ? null : token });
        if (mine !== generation.current) return;
        setImages((current) => (reset ? page.images : [...current, ...page.images]));
        setToken(page.continuationToken);
        setError(undefined);
      } catch (caught) {
        if (mine === generation.current) setError(errorText(caught));
      } finally {
        if (mine === generation.current) setLoading(false);
      }
    },
    [account, filters, token],
  );

  useEffect(() => {
    loadDeliveryContext(account).then(setContext, (caught: unknown) => setError(errorText(caught)));
    refreshStats();
  }, [account, refreshStats]);

  useEffect(() => {
    void load(true);
    // Only a change of filters starts the list again.
  }, [filters]);

  useEffect(() => {
    const target = sentinel.current;
    if (!target || token === null || loading) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) void load(false);
    });
    observer.observe(target);
    return () => observer.disconnect();
  }, [token, loading, load]);

  const updateUpload = (id: number, change: Partial<UploadItem>): void =>
    setUploads((current) => current.map((item) => (item.id === id ? { ...item, ...change } : item)));

  const startUploads = (files: File[]): void => {
    const items = files.map((file, index) => ({ id: Date.now() + index, name: file.name, total: file.size, loaded: 0, state: 'uploading' as const }));
    setUploads((current) => [...items, ...current]);
    files.forEach((file, index) => {
      const item = items[index];
      if (!item) return;
      uploadFile(account, file, (progress) => updateUpload(item.id, { loaded: progress.loaded, total: progress.total }))
        .then((image) => {
          updateUpload(item.id, { state: 'done', loaded: item.total });
          setImages((current) => (filters.sortOrder === 'desc' ? [image, ...current] : [...current, image]));
          refreshStats();
        })
        .catch((caught: unknown) => updateUpload(item.id, { state: 'failed', message: errorText(caught) }));
    });
  };

  const onDrop = (event: DragEvent): void => {
    event.preventDefault();
    setDragging(false);
    const files = Array.from(event.dataTransfer?.files ?? []);
    if (files.length > 0) startUploads(files);
  };

  return (
    <section aria-labelledby="images-heading">
      <div class="section-head">
        <h1 id="images-heading">Images</h1>
        <p class="stats" aria-live="polite">
          {stats ? `${stats.current.toLocaleString()} of ${stats.allowed.toLocaleString()} images` : 'Counting images…'}
        </p>
      </div>

      <div class="toolbar">
        <label class="upload-button">
          Upload images
          <input
            type="file"
            multiple
            accept="image/*"
            onChange={(event) => {
              const files = Array.from(event.currentTarget.files ?? []);
              event.currentTarget.value = '';
              if (files.length > 0) startUploads(files);
            }}
          />
        </label>
        <form
          class="filters"
          aria-label="Filters"
          onSubmit={(event) => {
            event.preventDefault();
            setFilters({ ...draft });
          }}
        >
          <label>
            Creator
            <input type="text" value={draft.creator} onInput={(event) => setDraft({ ...draft, creator: event.currentTarget.value })} />
          </label>
          <label>
            Metadata key
            <input type="text" value={draft.metaKey} onInput={(event) => setDraft({ ...draft, metaKey: event.currentTarget.value })} />
          </label>
          <label>
            Metadata value
            <input type="text" value={draft.metaValue} onInput={(event) => setDraft({ ...draft, metaValue: event.currentTarget.value })} />
          </label>
          <button type="submit">Apply filters</button>
        </form>
        <label>
          Sort order
          <select
            value={filters.sortOrder}
            onChange={(event) => {
              const sortOrder = event.currentTarget.value === 'asc' ? 'asc' : 'desc';
              setDraft({ ...draft, sortOrder });
              setFilters({ ...filters, sortOrder });
            }}
          >
            <option value="desc">Newest first</option>
            <option value="asc">Oldest first</option>
          </select>
        </label>
      </div>

      <UploadList items={uploads} onDismiss={() => setUploads((current) => current.filter((item) => item.state === 'uploading'))} />
      <ErrorNote message={error} />

      <div
        class={`dropzone${dragging ? ' dragging' : ''}`}
        onDragOver={(event) => {
          event.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p class="drop-hint">Drop image files here to upload them.</p>
        {context && (
          <ul class="grid" aria-label="Images" aria-busy={loading}>
            {images.map((image) => (
              <Tile key={image.id} image={image} context={context} onOpen={() => setOpen(image)} />
            ))}
          </ul>
        )}
        {!loading && images.length === 0 && <p>No images{filters === NO_FILTERS ? ' yet' : ' match these filters'}.</p>}
        <div ref={sentinel} class="sentinel" />
        {token !== null && (
          <button type="button" class="secondary" disabled={loading} onClick={() => void load(false)}>
            Load more images
          </button>
        )}
        {loading && <p role="status">Loading images…</p>}
      </div>

      {open && context && (
        <ImageDetail
          account={account}
          image={open}
          context={context}
          onClose={() => setOpen(undefined)}
          onChanged={(changed) => {
            setImages((current) => current.map((image) => (image.id === changed.id ? changed : image)));
            setOpen(changed);
          }}
          onDeleted={(id) => {
            setImages((current) => current.filter((image) => image.id !== id));
            setOpen(undefined);
            refreshStats();
          }}
        />
      )}
    </section>
  );
}
