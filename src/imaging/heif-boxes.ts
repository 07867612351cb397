/**
 * Just enough of ISO BMFF (the HEIF container) to read what the HEVC decoder does not hand back: the
 * brands (is this HEVC-coded HEIC?) and the ICC profile of the primary image, from its `colr` property.
 * Malformed or truncated boxes end the walk quietly: the decoder is the judge of validity.
 */

interface Box {
  type: string;
  /** Where the box's content starts (after its header) and ends, in the whole buffer. */
  start: number;
  end: number;
}

function* boxes(bytes: Buffer, start: number, end: number): Generator<Box> {
  let offset = start;
  while (offset + 8 <= end) {
    let size = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    let header = 8;
    if (size === 1) {
      if (offset + 16 > end) return;
      const large = bytes.readBigUInt64BE(offset + 8);
      if (large > BigInt(end - offset)) return;
      size = Number(large);
      header = 16;
    } else if (size === 0) {
      size = end - offset;
    }
    if (size < header || offset + size > end) return;
    yield { type, start: offset + header, end: offset + size };
    offset += size;
  }
}

function child(bytes: Buffer, parent: Box, type: string, fullBox = false): Box | undefined {
  for (const box of boxes(bytes, parent.start + (fullBox ? 4 : 0), parent.end)) if (box.type === type) return box;
  return undefined;
}

/** The major and compatible brands of the file, from `ftyp`. */
export function brandsOf(bytes: Buffer): string[] {
  for (const box of boxes(bytes, 0, bytes.length)) {
    if (box.type !== 'ftyp') return [];
    const brands = [bytes.toString('latin1', box.start, box.start + 4)];
    for (let offset = box.start + 8; offset + 4 <= box.end; offset += 4) brands.push(bytes.toString('latin1', offset, offset + 4));
    return brands;
  }
  return [];
}

/** HEVC-coded HEIF (what iPhones write): brands heic/heix/heim/heis, or hevc/hevx sequences. */
export function isHevcHeif(bytes: Buffer): boolean {
  return brandsOf(bytes).some((brand) => ['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx'].includes(brand));
}

function primaryItem(bytes: Buffer, meta: Box): number | undefined {
  const pitm = child(bytes, meta, 'pitm', true);
  if (!pitm) return undefined;
  // A full box: version and flags, then the item id (16 bits in version 0, else 32).
  const version = bytes[pitm.start];
  if (version === 0 && pitm.start + 6 <= pitm.end) return bytes.readUInt16BE(pitm.start + 4);
  if (pitm.start + 8 <= pitm.end) return bytes.readUInt32BE(pitm.start + 4);
  return undefined;
}

/** 1-based indexes into `ipco` of the properties associated with `item`. */
function propertyIndexes(bytes: Buffer, ipma: Box, item: number): number[] {
  const version = bytes[ipma.start] ?? 0;
  const flags = bytes.readUIntBE(ipma.start + 1, 3);
  let offset = ipma.start + 4;
  if (offset + 4 > ipma.end) return [];
  const entries = bytes.readUInt32BE(offset);
  offset += 4;
  for (let entry = 0; entry < entries && offset < ipma.end; entry++) {
    const id = version < 1 ? bytes.readUInt16BE(offset) : bytes.readUInt32BE(offset);
    offset += version < 1 ? 2 : 4;
    const count = bytes[offset] ?? 0;
    offset += 1;
    const indexes: number[] = [];
    for (let i = 0; i < count && offset < ipma.end; i++) {
      if (flags & 1) {
        indexes.push(bytes.readUInt16BE(offset) & 0x7fff);
        offset += 2;
      } else {
        indexes.push((bytes[offset] ?? 0) & 0x7f);
        offset += 1;
      }
    }
    if (id === item) return indexes;
  }
  return [];
}

/** The ICC profile of the primary image (`colr` of type `prof` or `rICC`), if the file carries one. */
export function primaryIccProfile(bytes: Buffer): Buffer | undefined {
  try {
    const meta = [...boxes(bytes, 0, bytes.length)].find((box) => box.type === 'meta');
    if (!meta) return undefined;
    const iprp = child(bytes, meta, 'iprp', true);
    const ipco = iprp && child(bytes, iprp, 'ipco');
    if (!iprp || !ipco) return undefined;
    const properties = [...boxes(bytes, ipco.start, ipco.end)];
    const item = primaryItem(bytes, meta);
    const ipma = child(bytes, iprp, 'ipma');
    const associated = item !== undefined && ipma ? propertyIndexes(bytes, ipma, item).map((index) => properties[index - 1]) : properties;
    for (const property of associated) {
      if (property?.type !== 'colr' || property.start + 4 > property.end) continue;
      const kind = bytes.toString('latin1', property.start, property.start + 4);
      if (kind === 'prof' || kind === 'rICC') return Buffer.from(bytes.subarray(property.start + 4, property.end));
    }
  } catch {
    // A box that claims more than the file holds: no profile.
  }
  return undefined;
}
