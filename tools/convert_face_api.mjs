#!/usr/bin/env node
// Convert the dlib face-recognition ResNet shipped in the npm package @vladmandic/face-api
// (model/face_recognition_model-weights_manifest.json + model/face_recognition_model.bin,
// TensorFlow.js weights format) into a float32 safetensors file.
//
// Usage:
//   node tools/convert_face_api.mjs <face-api model dir> <out.safetensors>
//   e.g. node tools/convert_face_api.mjs node_modules/@vladmandic/face-api/model \
//             tests/data/face_api/face_recognition.safetensors
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
      tensors.push({ name: spec.name, shape: spec.shape, data, quantization: q || null });
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
  const [modelDir, out] = process.argv.slice(2);
  if (!modelDir || !out) {
    console.error('usage: node convert_face_api.mjs <face-api model dir> <out.safetensors>');
    process.exit(2);
  }
  const tensors = readFaceApiWeights(modelDir);
  const config = { ...FACE_API_CONFIG };
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(modelDir, '..', 'package.json'), 'utf8'));
    if (pkg.name === '@vladmandic/face-api') config.source_version = pkg.version;
  } catch (e) { /* version is optional */ }
  const buf = encodeSafetensors(tensors, { config: JSON.stringify(config) });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, buf);
  const n = tensors.reduce((a, t) => a + t.data.length, 0);
  const nq = tensors.filter((t) => t.quantization).length;
  console.log(`wrote ${out}: ${tensors.length} tensors (${nq} dequantised from uint8), ${n} floats, ${buf.length} bytes`);
}

if (import.meta.url === `file://${path.resolve(process.argv[1] || '')}`) main();
