#!/usr/bin/env node
// Convert the dlib face-recognition ResNet shipped in the npm package @vladmandic/face-api
// (model/face_recognition_model-weights_manifest.json + model/face_recognition_model.bin,
// TensorFlow.js weights format) into a safetensors file.
//
// Usage:
//   node tools/convert_face_api.mjs [--float32] <face-api model dir> <out.safetensors>
//   e.g. node tools/convert_face_api.mjs node_modules/@vladmandic/face-api/model \
//             tests/data/face_api/face_recognition.safetensors
//
// Default output (6.4 MB, small enough to ship with the tests): the package's own uint8 codes
// are kept. A quantised tensor <name> is stored as U8 (same shape), with two F64 scalars
// <name>.__scale and <name>.__min; its value is float32(q * scale + min), evaluated in double,
// exactly tfjs-core's decodeWeight. The scalars are F64 because the manifest's scale/min are
// doubles that float32 cannot hold: rounding them to F32 changes 5.1 M of the 5.3 M dequantised
// values (by 1 ulp or more). Tensors the package stores as float32 stay F32.
// --float32 writes every tensor dequantised as F32 instead (22.5 MB, the previous layout).
//
// No dependencies beyond Node's fs/path. Tensor names, shapes and layouts are kept exactly as in
// the manifest (conv filters HWIO = [kh, kw, cin, cout], fc = [256, 128] = [in, out]).
// Dequantisation is bit-identical to tfjs-core's io_utils.decodeWeight:
//   uint8/uint16:  value = float32(q * scale + min)   (computed in double, rounded to float32)
//   float16:       IEEE half -> float32
//   float32:       raw little-endian bytes
// Weights of all groups are read in manifest order, each group's "paths" concatenated.
import fs from 'fs';
import path from 'path';

const MANIFEST = 'face_recognition_model-weights_manifest.json';

function halfToFloat(h) {
  const s = (h & 0x8000) ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * Math.pow(2, -14) * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * Math.pow(2, e - 15) * (1 + f / 1024);
}

export function readFaceApiWeights(modelDir) {
  const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, MANIFEST), 'utf8'));
  const tensors = []; // {name, shape, data: Float32Array, quantization}
  for (const group of manifest) {
    const bufs = group.paths.map((p) => fs.readFileSync(path.join(modelDir, p)));
    const buf = Buffer.concat(bufs);
    let off = 0;
    for (const spec of group.weights) {
      if (spec.dtype !== 'float32') throw new Error(`unsupported dtype ${spec.dtype} for ${spec.name}`);
      const size = spec.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(size);
      const q = spec.quantization;
      if (q) {
        if (q.dtype === 'uint8' || q.dtype === 'uint16') {
          if (!('min' in q && 'scale' in q)) throw new Error(`${spec.name}: quantization lacks min/scale`);
          const bpv = q.dtype === 'uint8' ? 1 : 2;
          for (let i = 0; i < size; i++) {
            const v = bpv === 1 ? buf[off + i] : buf.readUInt16LE(off + 2 * i);
            data[i] = v * q.scale + q.min; // same expression (and rounding) as tfjs-core
          }
          off += size * bpv;
        } else if (q.dtype === 'float16') {
          for (let i = 0; i < size; i++) data[i] = halfToFloat(buf.readUInt16LE(off + 2 * i));
          off += size * 2;
        } else {
          throw new Error(`${spec.name}: unknown quantization dtype ${q.dtype}`);
        }
      } else {
        for (let i = 0; i < size; i++) data[i] = buf.readFloatLE(off + 4 * i);
        off += size * 4;
      }
      const raw = q && q.dtype === 'uint8' ? Uint8Array.from(buf.subarray(off - size, off)) : null;
      tensors.push({ name: spec.name, shape: spec.shape, data, quantization: q || null, raw });
    }
    if (off !== buf.length) throw new Error(`group ${group.paths}: consumed ${off} of ${buf.length} bytes`);
  }
  return tensors;
}

// tensors: [{name, shape, data: Float32Array|Uint8Array..., dtype?: 'F32'}], metadata: {k: string}
export function encodeSafetensors(tensors, metadata) {
  const header = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  const parts = [];
  for (const t of tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[t.name] = { dtype: t.dtype || 'F32', shape: t.shape, data_offsets: [off, off + bytes.length] };
    parts.push(bytes);
    off += bytes.length;
  }
  let json = JSON.stringify(header);
  const pad = (8 - ((8 + Buffer.byteLength(json, 'utf8')) % 8)) % 8;
  json += ' '.repeat(pad);
  const jsonBuf = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(jsonBuf.length));
  // Buffers are written out little-endian (Float32Array on x86/ARM hosts is LE).
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('big-endian host not supported');
  return Buffer.concat([len, jsonBuf, ...parts]);
}

// The quantised layout: U8 codes + F64 __scale/__min for uint8-quantised tensors, F32 otherwise.
export function quantisedEntries(tensors) {
  const out = [];
  for (const t of tensors) {
    if (t.raw) {
      out.push({ name: t.name, shape: t.shape, data: t.raw, dtype: 'U8' });
      out.push({ name: `${t.name}.__scale`, shape: [], data: Float64Array.of(t.quantization.scale), dtype: 'F64' });
      out.push({ name: `${t.name}.__min`, shape: [], data: Float64Array.of(t.quantization.min), dtype: 'F64' });
    } else {
      out.push({ name: t.name, shape: t.shape, data: t.data });
    }
  }
  return out;
}

// Decodes quantisedEntries back to float32 (as a reader must) and checks every value against the
// dequantised tensors bit for bit; returns the number of tensors checked.
export function checkQuantisedRoundTrip(tensors, entries) {
  const byName = new Map(entries.map((e) => [e.name, e]));
  for (const t of tensors) {
    const e = byName.get(t.name);
    let decoded = e.data;
    if (e.dtype === 'U8') {
      const s = byName.get(`${t.name}.__scale`).data[0];
      const m = byName.get(`${t.name}.__min`).data[0];
      decoded = Float32Array.from(e.data, (q) => q * s + m);
    }
    for (let i = 0; i < t.data.length; i++) {
      if (decoded[i] !== t.data[i]) throw new Error(`${t.name}[${i}]: quantised layout decodes to ${decoded[i]}, expected ${t.data[i]}`);
    }
  }
  return tensors.length;
}

export const QUANTISATION_NOTE = 'U8 tensors hold the package\'s uint8 codes q; value = float32(q * <name>.__scale + <name>.__min) '
  + 'evaluated in double (F64 scalars, as in the manifest and tfjs-core decodeWeight); other tensors are F32';

export const FACE_API_CONFIG = {
  network: 'dlib_face_recognition_resnet',
  input_size: 150,
  mean: [122.782, 117.001, 104.298],
  divide_by: 255,
  input_transform: 'x = (rgb_0_255 - mean) / 255, NHWC RGB',
  descriptor_dim: 128,
  filter_layout: 'HWIO',
  fc_layout: '[in=256, out=128], y = x @ fc, no bias',
  source: '@vladmandic/face-api model/face_recognition_model',
};

function main() {
  const args = process.argv.slice(2);
  const float32 = args.includes('--float32');
  const [modelDir, out] = args.filter((a) => a !== '--float32');
  if (!modelDir || !out) {
    console.error('usage: node convert_face_api.mjs [--float32] <face-api model dir> <out.safetensors>');
    process.exitCode = 2;
    return;
  }
  const tensors = readFaceApiWeights(modelDir);
  const config = { ...FACE_API_CONFIG };
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(modelDir, '..', 'package.json'), 'utf8'));
    if (pkg.name === '@vladmandic/face-api') config.source_version = pkg.version;
  } catch (e) { /* version is optional */ }
  let buf;
  if (float32) {
    buf = encodeSafetensors(tensors, { config: JSON.stringify(config) });
  } else {
    const entries = quantisedEntries(tensors);
    checkQuantisedRoundTrip(tensors, entries);
    buf = encodeSafetensors(entries, { config: JSON.stringify(config), quantization: QUANTISATION_NOTE });
  }
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, buf);
  const n = tensors.reduce((a, t) => a + t.data.length, 0);
  const nq = tensors.filter((t) => t.quantization).length;
  console.log(`wrote ${out}: ${tensors.length} tensors (${nq} uint8-quantised, ${float32 ? 'dequantised to F32' : 'kept as U8 + F64 scale/min, round trip bit-exact'}), ${n} values, ${buf.length} bytes`);
}

if (import.meta.url === `file://${path.resolve(process.argv[1] || '')}`) main();
