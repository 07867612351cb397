/**
 * Runs on a worker thread (heic.ts): decodes the primary image of an HEVC HEIC with libheif compiled to
 * WebAssembly (libheif-js). libheif applies the container's rotation and mirroring, so the pixels come
 * out as displayed. The decode is synchronous CPU work: it must never run on the event loop.
 */
import libheif from 'libheif-js/wasm-bundle';

// libheif-js reports failures with console.log; on this thread the thrown error tells the caller instead.
console.log = () => undefined;

export interface DecodedHeic {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel. */
  rgba: Uint8Array;
}

export default async function decodeHeic(bytes: Uint8Array): Promise<DecodedHeic> {
  await libheif.ready;
  const decoder = new libheif.HeifDecoder();
  const images = decoder.decode(bytes);
  try {
    // A multi-image file (bursts, edits) shows its primary image.
    const image = images.find((candidate) => candidate.is_primary()) ?? images[0];
    if (!image) throw new Error('no image in the HEIF file');
    const width = image.get_width();
    const height = image.get_height();
    const target = { data: new Uint8ClampedArray(width * height * 4), width, height };
    const decoded = await new Promise<Uint8ClampedArray>((resolve, reject) => {
      image.display(target, (result) => (result ? resolve(result.data) : reject(new Error('the HEVC data could not be decoded'))));
    });
    return { width, height, rgba: new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength) };
  } finally {
    for (const image of images) image.free();
    if (decoder.decoder) libheif.heif_context_free(decoder.decoder);
  }
}
