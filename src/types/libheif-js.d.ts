/** The part of libheif-js (libheif compiled to WebAssembly, the pre-bundled build) Pictor uses. */
declare module 'libheif-js/wasm-bundle' {
  interface ImageData {
    data: Uint8ClampedArray;
    width: number;
    height: number;
  }
  interface HeifImage {
    get_width(): number;
    get_height(): number;
    is_primary(): boolean;
    has_alpha_channel(): boolean;
    /** Decodes to interleaved RGBA in `target` (transformations applied); calls back with null on failure. */
    display(target: ImageData, done: (result: ImageData | null) => void): void;
    free(): void;
  }
  interface HeifDecoder {
    decode(bytes: Uint8Array): HeifImage[];
    decoder: { delete?: () => void } | number | null;
  }
  interface LibHeif {
    ready?: Promise<void>;
    HeifDecoder: new () => HeifDecoder;
    heif_context_free(context: unknown): void;
  }
  const libheif: LibHeif;
  export default libheif;
}
