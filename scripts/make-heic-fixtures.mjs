#!/usr/bin/env node
// Makes the HEIC test fixtures in test/fixtures/images/heic/ from the repository's own JPEG/PNG fixtures
// with heif-enc (Debian package libheif-examples, x265 encoder), then patches two of them where heif-enc
// 1.15 has no option: a rotation property (`irot`, as iPhones write) and a primary image that is not the
// first. Run once; the outputs are committed, so tests and CI need no encoder:
//   apt-get install libheif-examples && node scripts/make-heic-fixtures.mjs
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const fixtures = path.join(root, 'test/fixtures/images');
const out = path.join(fixtures, 'heic');
fs.mkdirSync(out, { recursive: true });

function encode(name, inputs, quality = 50) {
  const target = path.join(os.tmpdir(), `pictor-${name}`);
  execFileSync('heif-enc', ['-q', String(quality), '-o', target, ...inputs.map((input) => path.join(fixtures, input))], { stdio: 'pipe' });
  return fs.readFileSync(target);
}

/** Top-level or child boxes between start and end: {type, offset (of the header), header, size}. */
function boxes(bytes, start, end) {
  const found = [];
  for (let offset = start; offset + 8 <= end; ) {
    const size = bytes.readUInt32BE(offset);
    if (size < 8) throw new Error('unexpected box size');
    found.push({ type: bytes.toString('latin1', offset + 4, offset + 8), offset, size });
    offset += size;
  }
  return found;
}

const find = (list, type) => {
  const box = list.find((candidate) => candidate.type === type);
  if (!box) throw new Error(`no ${type} box`);
  return box;
};

function metaParts(bytes) {
  const meta = find(boxes(bytes, 0, bytes.length), 'meta');
  const children = boxes(bytes, meta.offset + 12, meta.offset + meta.size);
  const iprp = find(children, 'iprp');
  const iprpChildren = boxes(bytes, iprp.offset + 8, iprp.offset + iprp.size);
  return { meta, children, iprp, ipco: find(iprpChildren, 'ipco'), ipma: find(iprpChildren, 'ipma') };
}

function primaryId(bytes, children) {
  const pitm = find(children, 'pitm');
  return bytes[pitm.offset + 8] === 0 ? bytes.readUInt16BE(pitm.offset + 12) : bytes.readUInt32BE(pitm.offset + 12);
}

/** Adds `delta` to every file offset in `iloc` (everything it points at lies after the meta box). */
function shiftItemLocations(bytes, iloc, delta) {
  let p = iloc.offset + 8;
  const version = bytes[p];
  p += 4;
  const offsetSize = bytes[p] >> 4;
  const lengthSize = bytes[p] & 15;
  const baseOffsetSize = bytes[p + 1] >> 4;
  const indexSize = version === 1 || version === 2 ? bytes[p + 1] & 15 : 0;
  p += 2;
  const readUInt = (at, size) => (size === 0 ? 0 : size === 4 ? bytes.readUInt32BE(at) : Number(bytes.readBigUInt64BE(at)));
  const writeUInt = (at, size, value) => (size === 4 ? bytes.writeUInt32BE(value, at) : size === 8 ? bytes.writeBigUInt64BE(BigInt(value), at) : undefined);
  const count = version < 2 ? bytes.readUInt16BE(p) : bytes.readUInt32BE(p);
  p += version < 2 ? 2 : 4;
  for (let item = 0; item < count; item++) {
    p += version < 2 ? 2 : 4;
    if (version === 1 || version === 2) p += 2; // construction method (0: file offsets, as heif-enc writes)
    p += 2; // data reference index
    if (baseOffsetSize > 0) writeUInt(p, baseOffsetSize, readUInt(p, baseOffsetSize) + delta);
    const shiftExtents = baseOffsetSize === 0;
    p += baseOffsetSize;
    const extents = bytes.readUInt16BE(p);
    p += 2;
    for (let extent = 0; extent < extents; extent++) {
      p += indexSize;
      if (shiftExtents) writeUInt(p, offsetSize, readUInt(p, offsetSize) + delta);
      p += offsetSize + lengthSize;
    }
  }
}

/** The primary image gains an `irot` property: displayed rotated `quarterTurnsCcw` × 90° counter-clockwise. */
function addRotation(input, quarterTurnsCcw) {
  const bytes = Buffer.from(input);
  const { meta, children, iprp, ipco, ipma } = metaParts(bytes);
  const item = primaryId(bytes, children);
  const properties = boxes(bytes, ipco.offset + 8, ipco.offset + ipco.size).length;
  const irot = Buffer.from([0, 0, 0, 9, ...Buffer.from('irot'), quarterTurnsCcw & 3]);
  // ipma: the primary item's entry gets one more association (essential, index of the new property).
  const version = bytes[ipma.offset + 8];
  const wide = (bytes.readUIntBE(ipma.offset + 9, 3) & 1) === 1;
  let p = ipma.offset + 12;
  const entries = bytes.readUInt32BE(p);
  p += 4;
  let insertAt = -1;
  for (let entry = 0; entry < entries; entry++) {
    const id = version < 1 ? bytes.readUInt16BE(p) : bytes.readUInt32BE(p);
    p += version < 1 ? 2 : 4;
    const count = bytes[p];
    if (id === item) {
      bytes[p] = count + 1;
      insertAt = p + 1 + count * (wide ? 2 : 1);
    }
    p += 1 + count * (wide ? 2 : 1);
  }
  if (insertAt < 0) throw new Error('the primary item has no ipma entry');
  const association = wide ? Buffer.from([0x80 | ((properties + 1) >> 8), (properties + 1) & 0xff]) : Buffer.from([0x80 | (properties + 1)]);
  const growth = irot.length + association.length;
  shiftItemLocations(bytes, find(children, 'iloc'), growth);
  for (const [box, by] of [[meta, growth], [iprp, growth], [ipco, irot.length], [ipma, association.length]]) bytes.writeUInt32BE(box.size + by, box.offset);
  const ipcoEnd = ipco.offset + ipco.size;
  return Buffer.concat([bytes.subarray(0, ipcoEnd), irot, bytes.subarray(ipcoEnd, insertAt), association, bytes.subarray(insertAt)]);
}

/** Points `pitm` at another top-level image. */
function setPrimary(input, id) {
  const bytes = Buffer.from(input);
  const { children } = metaParts(bytes);
  const pitm = find(children, 'pitm');
  if (bytes[pitm.offset + 8] === 0) bytes.writeUInt16BE(id, pitm.offset + 12);
  else bytes.writeUInt32BE(id, pitm.offset + 12);
  return bytes;
}

const write = (name, bytes) => {
  fs.writeFileSync(path.join(out, name), bytes);
  console.log(`${path.relative(root, path.join(out, name))} (${bytes.length} bytes)`);
};

write('photo.heic', encode('photo.heic', ['Landscape_1.jpg']));
// Landscape_1.jpg's pixels, stored turned a quarter clockwise, with irot restoring them (as a phone held
// upright writes a sensor-oriented picture): displayed, it must look like Landscape_1.jpg.
const turned = path.join(os.tmpdir(), 'pictor-turned.png');
execFileSync(process.execPath, ['-e', `require('sharp')(${JSON.stringify(path.join(fixtures, 'Landscape_1.jpg'))}).rotate(90).png().toFile(${JSON.stringify(turned)}).then(() => 0)`], { cwd: root });
fs.copyFileSync(turned, path.join(fixtures, '.turned.png'));
write('rotated.heic', addRotation(encode('rotated.heic', ['.turned.png']), 1));
fs.rmSync(path.join(fixtures, '.turned.png'));
write('p3.heic', encode('p3.heic', ['p3.png'], 90));
write('alpha.heic', encode('alpha.heic', ['with-alpha.png'], 80));
// Two top-level images, the second (id 4 as heif-enc numbers them) marked primary.
write('multi-primary-second.heic', setPrimary(encode('multi.heic', ['320x240.jpg', 'Landscape_2.jpg']), 4));
