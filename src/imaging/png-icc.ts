/**
 * Attaches an ICC profile to a PNG as an `iCCP` chunk right after `IHDR`, without touching its pixels.
 * sharp can convert to a profile but not label pixels with one; a decoded HEIC's pixels are in the
 * camera's profile (Display P3 on iPhones), and the renderer converts them to sRGB once they are labelled.
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/** The PNG with `icc` attached (PNG signature 8 bytes, then IHDR's 25). */
export function withIccProfile(png: Buffer, icc: Buffer): Buffer {
  const afterHeader = 8 + 25;
  if (png.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG with an IHDR first');
  // Profile name, NUL, compression method 0 (deflate), the compressed profile.
  const iccp = chunk('iCCP', Buffer.concat([Buffer.from('icc\0', 'latin1'), Buffer.from([0]), deflateSync(icc)]));
  return Buffer.concat([png.subarray(0, afterHeader), iccp, png.subarray(afterHeader)]);
}
