#!/usr/bin/env node
// Produce tests/data/face_api/{face_recognition.safetensors, identity_case.safetensors}:
// the converted dlib face-recognition ResNet weights and reference 128-d descriptors computed by
// the package's own JavaScript (@vladmandic/face-api, nets.faceRecognitionNet.computeFaceDescriptor)
// on the tfjs pure-JS CPU backend, for a set of real 150x150 face crops.
//
// Usage (see tools/README_face_api.md):
//   mkdir -p /tmp/faceapi && cd /tmp/faceapi && npm init -y && \
//     npm install @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0
//   apt-get download python3-skimage && dpkg-deb -x python3-skimage_*.deb /tmp/skimage/root
//   node tools/make_face_api_fixture.mjs --npm /tmp/faceapi \
//     --skimage-data /tmp/skimage/root/usr/lib/python3/dist-packages/skimage/data \
//     --out tests/data/face_api
//
// The wasm backend package is only installed because face-api's Node build for pure tfjs
// (dist/face-api.node-wasm.js) requires it; this script switches tfjs to the 'cpu' backend.
//
// Crops (all uint8 RGB, 150x150, exactly what is stored in the fixture):
//   astronaut         astronaut.png rows 35..184, cols 150..299 (no resampling)
//   astronaut_mirror  the same, flipped left-right
//   lfw_<i>           lfw_subset.npy[i] (25x25 grayscale float64 in [0,1]) resized to 150x150 with
//                     bilinear, half-pixel centres (src = (dst + 0.5) * 25/150 - 0.5, clamped to
//                     [0, 24]), then u8 = floor(255 * v + 0.5), replicated to R=G=B
//   lfw_<i>_mirror    the same, flipped left-right
// tools/tests/face_resnet_reference.py re-creates these crops with numpy and checks they match.
import fs from 'fs';
import path from 'path';
import zlib from 'zlib';
import { createRequire } from 'module';
import { readFaceApiWeights, encodeSafetensors, quantisedEntries, checkQuantisedRoundTrip, QUANTISATION_NOTE, FACE_API_CONFIG } from './convert_face_api.mjs';

export const LFW_INDICES = [0, 11, 22, 33, 44, 55, 66, 77, 88, 99];
export const ASTRONAUT_BOX = { y0: 35, x0: 150, size: 150 }; // rows y0..y0+149, cols x0..x0+149
const S = 150;

function parseArgs(argv) {
  const a = {};
  for (let i = 0; i < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const k of ['npm', 'skimage-data', 'out']) if (!a[k]) throw new Error(`missing --${k}`);
  return a;
}

// ---- minimal PNG decoder: 8-bit, non-interlaced, colour type 0/2/6 -------------------------
function decodePng(buf) {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  sig.forEach((b, i) => { if (buf[i] !== b) throw new Error('not a PNG'); });
  let off = 8; let w; let h; let ct; const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off); const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      w = data.readUInt32BE(0); h = data.readUInt32BE(4); ct = data[9];
      if (data[8] !== 8 || data[12] !== 0 || ![0, 2, 6].includes(ct)) throw new Error('unsupported PNG');
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const ch = { 0: 1, 2: 3, 6: 4 }[ct];
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = w * ch; const out = Buffer.alloc(h * stride);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (stride + 1)]; const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= ch ? out[y * stride + x - ch] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = (x >= ch && y > 0) ? out[(y - 1) * stride + x - ch] : 0;
      let p;
      if (f === 0) p = 0; else if (f === 1) p = a; else if (f === 2) p = b; else if (f === 3) p = (a + b) >> 1;
      else if (f === 4) { const pa = Math.abs(b - c); const pb = Math.abs(a - c); const pc = Math.abs(a + b - 2 * c); p = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c); } else throw new Error('bad filter');
      out[y * stride + x] = (src[x] + p) & 255;
    }
  }
  // to RGB HWC
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) for (let k = 0; k < 3; k++) rgb[i * 3 + k] = out[i * ch + (ch === 1 ? 0 : k)];
  return { w, h, rgb };
}

// ---- minimal .npy reader: little-endian float64, C order ------------------------------------
function readNpyF64(buf) {
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error('not npy');
  const major = buf[6]; const hl = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const ho = major === 1 ? 10 : 12; const hdr = buf.toString('latin1', ho, ho + hl);
  if (!/'descr':\s*'<f8'/.test(hdr) || /'fortran_order':\s*True/.test(hdr)) throw new Error(`unsupported npy ${hdr}`);
  const shape = hdr.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  const n = shape.reduce((a, b) => a * b, 1); const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = buf.readDoubleLE(ho + hl + 8 * i);
  return { shape, data };
}

// bilinear, half-pixel centres, edge clamp; identical arithmetic to the numpy re-creation
function resizeGrayToU8(src, sh, sw) {
  const out = new Uint8Array(S * S);
  const coord = (i, n) => {
    let s = (i + 0.5) * (n / S) - 0.5; if (s < 0) s = 0; if (s > n - 1) s = n - 1;
    const i0 = Math.floor(s); const i1 = Math.min(i0 + 1, n - 1); return [i0, i1, s - i0];
  };
  for (let y = 0; y < S; y++) {
    const [y0, y1, fy] = coord(y, sh);
    for (let x = 0; x < S; x++) {
      const [x0, x1, fx] = coord(x, sw);
      const top = (1 - fx) * src[y0 * sw + x0] + fx * src[y0 * sw + x1];
      const bot = (1 - fx) * src[y1 * sw + x0] + fx * src[y1 * sw + x1];
      const v = (1 - fy) * top + fy * bot;
      out[y * S + x] = Math.min(255, Math.max(0, Math.floor(255 * v + 0.5)));
    }
  }
  return out;
}

const mirrorHWC = (img) => {
  const o = new Uint8Array(img.length);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let k = 0; k < 3; k++) o[(y * S + x) * 3 + k] = img[(y * S + (S - 1 - x)) * 3 + k];
  return o;
};

export function buildCrops(skimageData) {
  const crops = []; // {name, hwc: Uint8Array(150*150*3)}
  const png = decodePng(fs.readFileSync(path.join(skimageData, 'astronaut.png')));
  const { y0, x0 } = ASTRONAUT_BOX; const astro = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let k = 0; k < 3; k++) astro[(y * S + x) * 3 + k] = png.rgb[((y0 + y) * png.w + x0 + x) * 3 + k];
  crops.push({ name: 'astronaut', hwc: astro }, { name: 'astronaut_mirror', hwc: mirrorHWC(astro) });
  const lfw = readNpyF64(fs.readFileSync(path.join(skimageData, 'lfw_subset.npy')));
  const [, lh, lw] = lfw.shape;
  for (const i of LFW_INDICES) {
    const g = resizeGrayToU8(lfw.data.subarray(i * lh * lw, (i + 1) * lh * lw), lh, lw);
    const hwc = new Uint8Array(S * S * 3); for (let p = 0; p < S * S; p++) hwc.fill(g[p], p * 3, p * 3 + 3);
    crops.push({ name: `lfw_${i}`, hwc }, { name: `lfw_${i}_mirror`, hwc: mirrorHWC(hwc) });
  }
  return crops;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const require = createRequire(path.join(path.resolve(args.npm), 'package.json'));
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const { tf } = faceapi;
  await tf.setBackend('cpu'); await tf.ready();
  const modelDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  const pkgVersion = require('@vladmandic/face-api/package.json').version;
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  console.log(`face-api ${pkgVersion}, tfjs ${tf.version_core}, backend ${tf.getBackend()}`);

  // 1. weights: converted file, checked bit-for-bit against what tfjs loaded
  const tensors = readFaceApiWeights(modelDir);
  const loaded = new Map(faceapi.nets.faceRecognitionNet.getParamList().map((p) => [p.path, p.tensor]));
  let mism = 0;
  for (const t of tensors) {
    const ref = loaded.get(t.name).dataSync();
    if (ref.length !== t.data.length || JSON.stringify(loaded.get(t.name).shape) !== JSON.stringify(t.shape)) throw new Error(`shape mismatch ${t.name}`);
    for (let i = 0; i < ref.length; i++) if (ref[i] !== t.data[i]) mism++;
  }
  if (mism || loaded.size !== tensors.length) throw new Error(`converter differs from tfjs loader: ${mism} values, ${loaded.size} vs ${tensors.length} tensors`);
  console.log(`converter == tfjs loader, bit-exact, ${tensors.length} tensors`);
  fs.mkdirSync(args.out, { recursive: true });
  const config = { ...FACE_API_CONFIG, source_version: pkgVersion };
  // the shipped weights keep the package's uint8 codes (see convert_face_api.mjs); the round trip
  // check proves they decode to exactly what tfjs loaded
  const entries = quantisedEntries(tensors);
  checkQuantisedRoundTrip(tensors, entries);
  fs.writeFileSync(path.join(args.out, 'face_recognition.safetensors'),
    encodeSafetensors(entries, { config: JSON.stringify(config), quantization: QUANTISATION_NOTE }));

  // 2. crops and the package's descriptors
  const crops = buildCrops(args['skimage-data']);
  const N = crops.length;
  const nchw = new Float32Array(N * 3 * S * S); const desc = new Float32Array(N * 128);
  for (let n = 0; n < N; n++) {
    const { hwc } = crops[n];
    for (let k = 0; k < 3; k++) for (let p = 0; p < S * S; p++) nchw[(n * 3 + k) * S * S + p] = hwc[p * 3 + k];
    const input = tf.tensor3d(Float32Array.from(hwc), [S, S, 3], 'float32');
    const d = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(input);
    input.dispose();
    if (d.length !== 128) throw new Error('descriptor length');
    desc.set(d, n * 128);
  }
  const meta = {
    names: JSON.stringify(crops.map((c) => c.name)),
    lfw_indices: JSON.stringify(LFW_INDICES),
    astronaut_box: JSON.stringify({ rows: [ASTRONAUT_BOX.y0, ASTRONAUT_BOX.y0 + S], cols: [ASTRONAUT_BOX.x0, ASTRONAUT_BOX.x0 + S] }),
    crops: 'uint8 RGB values stored as F32 0..255, NCHW [N,3,150,150]; lfw: 25x25 gray -> 150x150 bilinear half-pixel, floor(255*v+0.5), R=G=B',
    descriptors: `face-api ${pkgVersion} nets.faceRecognitionNet.computeFaceDescriptor, tfjs ${tf.version_core} cpu backend, input tensor3d [150,150,3] float32 RGB 0..255`,
  };
  fs.writeFileSync(path.join(args.out, 'identity_case.safetensors'), encodeSafetensors([
    { name: 'crops', shape: [N, 3, S, S], data: nchw },
    { name: 'descriptors', shape: [N, 128], data: desc },
  ], meta));
  console.log(`wrote ${N} crops and descriptors to ${args.out}`);
  if (args['dump-png']) { // optional: a contact sheet of the crops (PPM, no encoder needed)
    const cols = 6; const rows = Math.ceil(N / cols); const W = cols * S; const H = rows * S; const img = Buffer.alloc(W * H * 3);
    crops.forEach((c, n) => { const r = Math.floor(n / cols); const cc = n % cols; for (let y = 0; y < S; y++) Buffer.from(c.hwc.buffer).copy(img, ((r * S + y) * W + cc * S) * 3, y * S * 3, (y + 1) * S * 3); });
    fs.writeFileSync(args['dump-png'], Buffer.concat([Buffer.from(`P6 ${W} ${H} 255\n`), img]));
  }
}

if (import.meta.url === `file://${path.resolve(process.argv[1] || '')}`) main().catch((e) => { console.error(e); process.exit(1); });
