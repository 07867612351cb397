/**
 * Makes the bytes of an image unique without making it invalid, so that in a test a row pointing at the
 * wrong blob cannot pass for the right one: a JPEG comment segment after SOI, or a PNG tEXt chunk after
 * IHDR.
 */
import zlib from 'node:zlib';

export function taggedImage(bytes: Buffer, tag: string): Buffer {
  const text = Buffer.from(tag, 'latin1');
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(text.length + 2);
    return Buffer.concat([bytes.subarray(0, 2), Buffer.from([0xff, 0xfe]), length, text, bytes.subarray(2)]);
  }
  if (bytes.subarray(1, 4).toString('latin1') === 'PNG') {
    const afterIhdr = 8 + 4 + 4 + bytes.readUInt32BE(8) + 4;
    const data = Buffer.concat([Buffer.from('Comment\0', 'latin1'), text]);
    const typeAndData = Buffer.concat([Buffer.from('tEXt', 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(typeAndData));
    return Buffer.concat([bytes.subarray(0, afterIhdr), length, typeAndData, crc, bytes.subarray(afterIhdr)]);
  }
  throw new Error('taggedImage() handles JPEG and PNG only');
}
