#!/usr/bin/env python3
"""Tests of tools/: safetensors_lite, the StyleGAN2 layout, and both converters.

Needs numpy and torch (Debian's python3-torch):
    /usr/bin/python3 -m unittest discover -s tools/tests -v
or  /usr/bin/python3 tools/tests/test_converters.py
"""

import io
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import unittest
from collections import OrderedDict
from contextlib import redirect_stdout

import numpy as np

try:
    import torch
except ImportError as e:  # e.g. a pyenv python3 without torch
    raise ImportError("tools/tests need torch: run them with Debian's /usr/bin/python3 "
                      "(python3-torch) or a python that has torch") from e

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
sys.path.insert(0, HERE)

import convert_rosinality as cr  # noqa: E402
import convert_stylegan2_ada_pkl as cn  # noqa: E402
import safetensors_lite as st  # noqa: E402
from fake_stylegan2_ada import FakeGenerator  # noqa: E402
from stylegan2_layout import (CONFIG_FIELDS, ConversionError, channels_for,  # noqa: E402
                              expected_shapes, filter_buffer)

FIXTURE_DIRS = [os.path.join(REPO, "..", "shared", "fixtures", "stylegan2_tiny"),
                os.path.join(REPO, "tests", "data", "stylegan2_tiny")]
F131 = np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float32) / 64


def run_tool(script, *args, pythonpath=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = pythonpath if pythonpath is not None else ""
    r = subprocess.run([sys.executable, os.path.join(TOOLS, script), *args],
                       env=env, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


class TempDir(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)


# ----------------------------------------------------------------------------- safetensors_lite

class SafetensorsLiteTest(TempDir):
    def test_roundtrip_layout(self):
        rng = np.random.default_rng(1)
        tensors = OrderedDict([
            ("b.weight", rng.standard_normal((3, 4, 2, 2)).astype(np.float32)),
            ("a.scalar", np.float32(0.25)),
            ("empty", np.zeros((0, 3), np.float32)),
            ("from_f64", rng.standard_normal(5)),
        ])
        p = self.path("t.safetensors")
        st.save_file(tensors, p, metadata={"config": json.dumps({"x": 1}), "note": "hi"})
        with open(p, "rb") as f:
            raw = f.read()
        n = struct.unpack("<Q", raw[:8])[0]
        self.assertEqual((8 + n) % 8, 0)
        header = json.loads(raw[8:8 + n])
        text = raw[8:8 + n]
        self.assertTrue(text.rstrip(b" ").endswith(b"}"))  # padded with spaces only
        self.assertLess(len(text) - len(text.rstrip(b" ")), 8)
        self.assertEqual(header["__metadata__"], {"config": '{"x": 1}', "note": "hi"})
        names = [k for k in header if k != "__metadata__"]
        self.assertEqual(names, list(tensors))
        end = 0
        for name in names:  # contiguous, in the order written
            info = header[name]
            self.assertEqual(info["dtype"], "F32")
            self.assertEqual(info["data_offsets"][0], end)
            end = info["data_offsets"][1]
        self.assertEqual(8 + n + end, len(raw))
        self.assertEqual(header["a.scalar"]["shape"], [])
        self.assertEqual(header["empty"]["shape"], [0, 3])

        back = st.load_file(p)
        self.assertEqual(list(back), list(tensors))
        for k, v in tensors.items():
            self.assertEqual(back[k].dtype, np.float32)
            self.assertEqual(back[k].shape, np.shape(v))
            np.testing.assert_array_equal(back[k], np.asarray(v, np.float32))
        self.assertEqual(st.load_metadata(p)["note"], "hi")
        self.assertEqual(st.load_config(p), {"x": 1})

    def test_reads_f16_bf16(self):
        vals = np.array([1.5, -2.0, 0.099976, 3.0e4], np.float32)
        f16 = vals.astype("<f2").tobytes()
        bf16 = (vals.view(np.uint32) >> 16).astype("<u2").tobytes()
        header = {"h": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]},
                  "b": {"dtype": "BF16", "shape": [4], "data_offsets": [8, 16]}}
        text = json.dumps(header).encode()
        p = self.path("h.safetensors")
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + f16 + bf16)
        back = st.load_file(p)
        self.assertEqual(back["h"].dtype, np.float16)
        np.testing.assert_array_equal(back["h"], vals.astype(np.float16).reshape(2, 2))
        self.assertEqual(back["b"].dtype, np.float32)
        np.testing.assert_array_equal(back["b"], (vals.view(np.uint32) & 0xFFFF0000).view(np.float32))
        self.assertEqual(st.load_metadata(p), {})

    def test_rejects_bad_files(self):
        def write(header, data=b""):
            text = json.dumps(header).encode()
            p = self.path(f"bad{len(os.listdir(self.tmp))}.safetensors")
            with open(p, "wb") as f:
                f.write(struct.pack("<Q", len(text)) + text + data)
            return p
        cases = {
            "dtype I64": write({"x": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8),
            "outside": write({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),
            "needs": write({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
            "overlaps": write({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                               "y": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
        }
        for what, p in cases.items():
            with self.assertRaisesRegex(st.SafetensorsError, what):
                st.load_file(p)
        p = self.path("short.safetensors")
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", 100) + b"{}")
        with self.assertRaisesRegex(st.SafetensorsError, "ends early"):
            st.load_file(p)

    def test_write_rejects(self):
        with self.assertRaisesRegex(st.SafetensorsError, "F32 only"):
            st.save_file({"i": np.arange(3)}, self.path("x"))
        with self.assertRaisesRegex(st.SafetensorsError, "str to str"):
            st.save_file({"a": np.zeros(1)}, self.path("x"), metadata={"n": 3})

    def test_real_fixture(self):
        found = [d for d in FIXTURE_DIRS if os.path.isfile(os.path.join(d, "generator.safetensors"))]
        if not found:
            self.skipTest("stylegan2_tiny fixture not found")
        for d in found:
            path = os.path.join(d, "generator.safetensors")
            tensors = st.load_file(path)
            header = st.load_header(path)
            cfg = st.load_config(path)
            with open(os.path.join(d, "generator.json")) as f:
                self.assertEqual(cfg, json.load(f))
            self.assertEqual(list(cfg), list(CONFIG_FIELDS))
            # The layout module predicts NVIDIA's real state dict: names, order and shapes.
            want = expected_shapes(cfg)
            self.assertEqual(list(tensors), list(want))
            for k, shape in want.items():
                self.assertEqual(list(tensors[k].shape), shape, k)
                self.assertEqual(header[k]["dtype"], "F32")
                self.assertEqual(tensors[k].dtype, np.float32)
            self.assertEqual(len(tensors), 79)
            np.testing.assert_array_equal(tensors["synthesis.b8.conv0.resample_filter"], F131)
            self.assertTrue(np.isfinite(tensors["synthesis.b32.conv1.weight"]).all())
            for other in ("generator_case", "modconv_case", "upfirdn2d_case", "lpips_case"):
                p = os.path.join(d, other + ".safetensors")
                if os.path.isfile(p):
                    self.assertGreater(len(st.load_file(p)), 0)

    def test_demo_model_layout(self):
        """The shipped demo generator (trained with the official loop) has the predicted layout."""
        path = os.path.join(REPO, "models", "fmnist32.safetensors")
        if not os.path.isfile(path):
            self.skipTest("models/fmnist32.safetensors not found")
        tensors, cfg = st.load_file(path), st.load_config(path)
        want = expected_shapes(cfg)
        self.assertEqual(list(tensors), list(want))
        for k, shape in want.items():
            self.assertEqual(list(tensors[k].shape), shape, k)


# ----------------------------------------------------------------------------- rosinality

def rosinality_state_dict(size=32, style_dim=16, n_mlp=3, channels=None, blur=(1, 3, 3, 1),
                          img_channels=3, seed=0):
    """A random g_ema state dict with the names and shapes of rosinality's Generator."""
    channels = channels or {4: 32, 8: 32, 16: 32, 32: 16, 64: 8}
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    k = torch.tensor(blur, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    kernel = k / k.sum() * 4
    sd = OrderedDict()
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"] = rnd(style_dim, style_dim) * 100
        sd[f"style.{i}.bias"] = rnd(style_dim)
    c4 = channels[4]
    sd["input.input"] = rnd(1, c4, 4, 4)

    def styled(p, cin, cout, up):
        sd[p + ".conv.weight"] = rnd(1, cout, cin, 3, 3)
        if up:
            sd[p + ".conv.blur.kernel"] = kernel.clone()
        sd[p + ".conv.modulation.weight"] = rnd(cin, style_dim)
        sd[p + ".conv.modulation.bias"] = 1 + 0.1 * rnd(cin)
        sd[p + ".noise.weight"] = rnd(1)
        sd[p + ".activate.bias"] = rnd(cout)

    def rgb(p, cin, up):
        sd[p + ".bias"] = rnd(1, img_channels, 1, 1)
        if up:
            sd[p + ".upsample.kernel"] = kernel.clone()
        sd[p + ".conv.weight"] = rnd(1, img_channels, cin, 1, 1)
        sd[p + ".conv.modulation.weight"] = rnd(cin, style_dim)
        sd[p + ".conv.modulation.bias"] = 1 + 0.1 * rnd(cin)

    styled("conv1", c4, c4, False)
    rgb("to_rgb1", c4, False)
    res_list = [2 ** i for i in range(3, int(math.log2(size)) + 1)]
    cin = c4
    for j, res in enumerate(res_list):
        styled(f"convs.{2 * j}", cin, channels[res], True)
        styled(f"convs.{2 * j + 1}", channels[res], channels[res], False)
        cin = channels[res]
    for j, res in enumerate(res_list):
        rgb(f"to_rgbs.{j}", channels[res], True)
    sd["noises.noise_0"] = rnd(1, 1, 4, 4)
    for j, res in enumerate(res_list):
        sd[f"noises.noise_{2 * j + 1}"] = rnd(1, 1, res, res)
        sd[f"noises.noise_{2 * j + 2}"] = rnd(1, 1, res, res)
    return sd


def rosinality_channels(cm, size):
    full = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm,
            512: 32 * cm, 1024: 16 * cm}
    return {r: c for r, c in full.items() if r <= size}


class RosinalityTest(TempDir):
    def check_converted(self, out, sd, cfg_expect, latent_avg=None):
        tensors = st.load_file(out)
        header = st.load_header(out)
        cfg = st.load_config(out)
        self.assertEqual(list(cfg), list(CONFIG_FIELDS))
        for k, v in cfg_expect.items():
            self.assertEqual(cfg[k], v, k)
        self.assertEqual(list(tensors), list(expected_shapes(cfg)))
        for k, shape in expected_shapes(cfg).items():
            self.assertEqual(list(tensors[k].shape), shape, k)
            self.assertEqual(header[k]["dtype"], "F32", k)
        a = {k: v.numpy() for k, v in sd.items()}
        n_layers = 1 + 2 * (int(math.log2(cfg["img_resolution"])) - 2)
        layers = [("conv1", "synthesis.b4.conv1", 0)]
        rgbs = [("to_rgb1", "synthesis.b4.torgb")]
        for j in range((n_layers - 1) // 2):
            b = f"synthesis.b{8 << j}"
            layers += [(f"convs.{2 * j}", b + ".conv0", 2 * j + 1),
                       (f"convs.{2 * j + 1}", b + ".conv1", 2 * j + 2)]
            rgbs.append((f"to_rgbs.{j}", b + ".torgb"))
        for src, dst, ni in layers:
            w = a[src + ".conv.weight"][0]
            scale = np.float32(1 / math.sqrt(w.shape[1] * 9))  # 1/sqrt(I*k*k), k = 3
            np.testing.assert_array_equal(tensors[dst + ".weight"], w * scale)
            self.assertEqual(tensors[dst + ".noise_strength"].shape, ())
            self.assertEqual(float(tensors[dst + ".noise_strength"]), float(a[src + ".noise.weight"][0]))
            np.testing.assert_array_equal(tensors[dst + ".bias"], a[src + ".activate.bias"])
            np.testing.assert_array_equal(tensors[dst + ".noise_const"], a[f"noises.noise_{ni}"][0, 0])
            np.testing.assert_array_equal(tensors[dst + ".affine.weight"], a[src + ".conv.modulation.weight"])
            np.testing.assert_array_equal(tensors[dst + ".affine.bias"], a[src + ".conv.modulation.bias"])
        for src, dst in rgbs:  # raw weight: NVIDIA scales the ToRGB styles itself
            np.testing.assert_array_equal(tensors[dst + ".weight"], a[src + ".conv.weight"][0])
            np.testing.assert_array_equal(tensors[dst + ".bias"], a[src + ".bias"].reshape(-1))
            np.testing.assert_array_equal(tensors[dst + ".affine.weight"], a[src + ".conv.modulation.weight"])
            np.testing.assert_array_equal(tensors[dst + ".affine.bias"], a[src + ".conv.modulation.bias"])
        np.testing.assert_array_equal(tensors["synthesis.b4.const"], a["input.input"][0])
        for i in range(cfg["mapping_layers"]):
            np.testing.assert_array_equal(tensors[f"mapping.fc{i}.weight"], a[f"style.{i + 1}.weight"])
            np.testing.assert_array_equal(tensors[f"mapping.fc{i}.bias"], a[f"style.{i + 1}.bias"])
        for k in tensors:
            if k.endswith("resample_filter"):
                np.testing.assert_array_equal(tensors[k], filter_buffer(cfg["resample_filter"]))
        if latent_avg is not None:
            np.testing.assert_array_equal(tensors["mapping.w_avg"], latent_avg.reshape(-1))
        return tensors, cfg

    def test_convert_cli_with_latent_avg(self):
        sd = rosinality_state_dict()
        latent_avg = torch.randn(1, 16)
        pt, out = self.path("g.pt"), self.path("g.safetensors")
        torch.save({"g_ema": sd, "latent_avg": latent_avg, "g": sd, "d": {}}, pt)
        rc, so, se = run_tool("convert_rosinality.py", pt, out)
        self.assertEqual(rc, 0, se)
        self.assertIn("wrote", so)
        _, cfg = self.check_converted(out, sd, dict(
            architecture="skip", z_dim=16, c_dim=0, w_dim=16, img_resolution=32, img_channels=3,
            mapping_layers=3, channel_base=512, channel_max=32, num_fp16_res=0, conv_clamp=None,
            num_ws=8, lr_multiplier=0.01, w_avg_beta=0.995, resample_filter=[1, 3, 3, 1]),
            latent_avg.numpy())
        self.assertIn("rosinality", cfg["source"])
        self.assertEqual(channels_for(512, 32, 32), {4: 32, 8: 32, 16: 32, 32: 16})
        np.testing.assert_array_equal(st.load_file(out)["synthesis.b4.resample_filter"], F131)

    def test_w_avg_from_mapping(self):
        sd = rosinality_state_dict(size=16, style_dim=8, n_mlp=2, img_channels=1, seed=3)
        pt, out = self.path("g.pt"), self.path("g.safetensors")
        torch.save({"g_ema": sd}, pt)
        buf = io.StringIO()
        with redirect_stdout(buf):
            cfg = cr.convert(pt, out, lr_mlp=0.02)
        self.assertIn("no latent_avg", buf.getvalue())
        self.assertIn("seed", buf.getvalue())
        self.check_converted(out, sd, dict(img_resolution=16, img_channels=1, mapping_layers=2,
                                           lr_multiplier=0.02, num_ws=6, z_dim=8, w_dim=8))
        # Independent float64 torch evaluation of rosinality's mapping on the same z.
        z = torch.from_numpy(np.random.default_rng(cr.W_AVG_SEED).standard_normal((cr.W_AVG_SAMPLES, 8)))
        x = z * torch.rsqrt((z ** 2).mean(1, keepdim=True) + 1e-8)
        for i in (1, 2):
            w, b = sd[f"style.{i}.weight"].double(), sd[f"style.{i}.bias"].double()
            x = torch.nn.functional.linear(x, w * (0.02 / math.sqrt(8)))
            x = torch.nn.functional.leaky_relu(x + b * 0.02, 0.2) * math.sqrt(2)
        np.testing.assert_allclose(st.load_file(out)["mapping.w_avg"], x.mean(0).numpy(), rtol=1e-6, atol=1e-6)
        self.assertEqual(cfg["lr_multiplier"], 0.02)

    def test_other_blur_kernel_and_bare_state_dict(self):
        sd = rosinality_state_dict(size=16, blur=(1, 2, 1))
        pt, out = self.path("g.pt"), self.path("g.safetensors")
        torch.save(OrderedDict(sd), pt)  # a bare g_ema state dict
        with redirect_stdout(io.StringIO()):
            cfg = cr.convert(pt, out)
        self.assertEqual(cfg["resample_filter"], [1, 2, 1])
        f = st.load_file(out)["synthesis.b8.conv0.resample_filter"]
        np.testing.assert_allclose(f, np.outer([1, 2, 1], [1, 2, 1]) / 16, rtol=0, atol=1e-7)

    def test_errors(self):
        def convert_sd(sd, wrap=True):
            pt = self.path("e.pt")
            torch.save({"g_ema": sd} if wrap else sd, pt)
            with redirect_stdout(io.StringIO()):
                cr.convert(pt, self.path("e.safetensors"))

        sd = rosinality_state_dict(size=16)
        del sd["to_rgbs.0.bias"]
        with self.assertRaisesRegex(ConversionError, "'to_rgbs.0.bias' is missing"):
            convert_sd(sd)
        sd = rosinality_state_dict(size=16)
        del sd["noises.noise_2"]
        with self.assertRaisesRegex(ConversionError, "noises.noise_2"):
            convert_sd(sd)
        sd = rosinality_state_dict(size=16)
        sd["convs.0.extra.weight"] = torch.zeros(3)
        with self.assertRaisesRegex(ConversionError, "does not know.*convs.0.extra.weight"):
            convert_sd(sd)
        sd = rosinality_state_dict(size=16)
        sd["convs.0.conv.blur.kernel"] = torch.rand(4, 4)
        with self.assertRaisesRegex(ConversionError, "blur kernel"):
            convert_sd(sd)
        with self.assertRaisesRegex(ConversionError, "no 'g_ema'"):
            convert_sd({"g": rosinality_state_dict(size=8)}, wrap=False)
        with self.assertRaisesRegex(ConversionError, "no such file"):
            cr.convert(self.path("missing.pt"), self.path("x.safetensors"))
        # channel_multiplier 4: 64px is wider than 32px, which NVIDIA's rule cannot express
        sd = rosinality_state_dict(size=64, channels={4: 16, 8: 16, 16: 16, 32: 16, 64: 32})
        with self.assertRaisesRegex(ConversionError, "cannot be written as NVIDIA's"):
            convert_sd(sd)
        # CLI: exit code 2 and a message on stderr
        pt = self.path("nog.pt")
        torch.save({"d": {}}, pt)
        rc, so, se = run_tool("convert_rosinality.py", pt, self.path("x.safetensors"))
        self.assertEqual(rc, 2)
        self.assertIn("error:", se)
        self.assertIn("g_ema", se)

    def test_solve_channels(self):
        # rosinality's own channel lists, channel_multiplier 1 and 2, all sizes
        for cm in (1, 2):
            for size in (64, 128, 256, 512, 1024):
                ch = rosinality_channels(cm, size)
                base, cmax = cr.solve_channels(ch)
                self.assertEqual((base, cmax), (16384 * cm, 512), (cm, size))
                self.assertEqual(channels_for(base, cmax, size), ch)
        self.assertEqual(cr.solve_channels(rosinality_channels(2, 32)), (16384, 512))
        # channel_multiplier 4 cannot be expressed from 64px up
        for size in (64, 256, 1024):
            with self.assertRaises(ConversionError):
                cr.solve_channels(rosinality_channels(4, size))
        # every NVIDIA (base, max) pair is recovered (up to an equivalent pair)
        rng = np.random.default_rng(0)
        for _ in range(300):
            size = int(2 ** rng.integers(2, 11))
            ch = channels_for(int(rng.integers(4, 70000)), int(rng.integers(1, 1025)), size)
            base, cmax = cr.solve_channels(ch)
            self.assertEqual(channels_for(base, cmax, size), ch)
        with self.assertRaises(ConversionError):
            cr.solve_channels({4: 64, 8: 32, 16: 32, 32: 30})  # 8px and 16px both 32 need disjoint bases


# ----------------------------------------------------------------------------- NVIDIA pickle

class NvidiaPklTest(TempDir):
    PYTHONPATH = os.pathsep.join([HERE, TOOLS])

    def save_pkl(self, G, name="net.pkl", key="G_ema"):
        p = self.path(name)
        with open(p, "wb") as f:
            pickle.dump({"G": G, key: G, "D": None, "training_set_kwargs": {}}, f)
        return p

    def test_convert_cli(self):
        G = FakeGenerator(seed=5, z_dim=12, w_dim=16, img_resolution=16, img_channels=3,
                          mapping_kwargs=dict(num_layers=2, lr_multiplier=0.01),
                          synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=1,
                                                conv_clamp=256))
        pkl, out = self.save_pkl(G), self.path("g.safetensors")
        rc, so, se = run_tool("convert_stylegan2_ada_pkl.py", pkl, out, pythonpath=self.PYTHONPATH)
        self.assertEqual(rc, 0, se)
        tensors, header, cfg = st.load_file(out), st.load_header(out), st.load_config(out)
        ref = G.state_dict()
        self.assertEqual(list(tensors), list(ref))
        for k, v in ref.items():
            self.assertEqual(header[k]["dtype"], "F32")
            self.assertEqual(tensors[k].shape, tuple(v.shape))
            np.testing.assert_array_equal(tensors[k], v.numpy())  # bit-identical
        self.assertEqual(tensors["synthesis.b8.conv1.noise_strength"].shape, ())
        self.assertEqual(dict(cfg, source=None), dict(
            architecture="skip", z_dim=12, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
            mapping_layers=2, channel_base=256, channel_max=32, num_fp16_res=1, conv_clamp=256,
            num_ws=6, lr_multiplier=0.01, w_avg_beta=0.995, resample_filter=[1, 3, 3, 1], source=None))
        self.assertEqual(list(cfg), list(CONFIG_FIELDS))
        self.assertIn("net.pkl", cfg["source"])

    def test_config_defaults(self):
        G = FakeGenerator(img_resolution=8, synthesis_kwargs=dict(channel_base=64, channel_max=8))
        G.init_kwargs["synthesis_kwargs"] = {}
        G.init_kwargs["mapping_kwargs"] = {}
        cfg = cn.config_from_generator(G, source="x")
        self.assertEqual((cfg["channel_base"], cfg["channel_max"], cfg["num_fp16_res"], cfg["conv_clamp"],
                          cfg["mapping_layers"], cfg["lr_multiplier"], cfg["w_avg_beta"],
                          cfg["resample_filter"], cfg["num_ws"]),
                         (32768, 512, 0, None, 8, 0.01, 0.995, [1, 3, 3, 1], 4))

    def test_errors(self):
        def convert(G, **kw):
            with redirect_stdout(io.StringIO()):
                cn.convert(self.save_pkl(G, **kw), self.path("e.safetensors"))

        small = dict(img_resolution=8, synthesis_kwargs=dict(channel_base=64, channel_max=8))
        for arch in ("orig", "resnet"):
            G = FakeGenerator(img_resolution=8, synthesis_kwargs=dict(
                channel_base=64, channel_max=8, architecture=arch))
            with self.assertRaisesRegex(ConversionError, f"architecture '{arch}' is not supported.*'skip'"):
                convert(G)
        G = FakeGenerator(**small)
        G.synthesis.b8.architecture = "resnet"  # the modules win over init_kwargs
        with self.assertRaisesRegex(ConversionError, "architecture 'resnet'"):
            convert(G)
        G = FakeGenerator(c_dim=10, **small)
        with self.assertRaisesRegex(ConversionError, "c_dim = 10: conditional"):
            convert(G)
        G = FakeGenerator(**small)
        with self.assertRaisesRegex(ConversionError, "no key 'G_ema'"):
            convert(G, key="G_other")
        G = FakeGenerator(**small)
        del G._sd["synthesis.b8.conv0.affine.bias"]
        with self.assertRaisesRegex(ConversionError, "missing tensors: synthesis.b8.conv0.affine.bias"):
            convert(G)
        G = FakeGenerator(**small)
        G._sd["mapping.embed.weight"] = torch.zeros(8, 4)
        with self.assertRaisesRegex(ConversionError, "unexpected tensors: mapping.embed.weight"):
            convert(G)
        G = FakeGenerator(**small)
        G._sd["synthesis.b8.conv1.weight"] = torch.zeros(8, 8, 1, 1)
        with self.assertRaisesRegex(ConversionError, r"'synthesis.b8.conv1.weight' has shape \[8, 8, 1, 1\]"):
            convert(G)
        # A pickle that needs the stylegan2-ada-pytorch modules, without them on the path.
        p = self.path("needs_repo.pkl")
        with open(p, "wb") as f:
            f.write(b"ctorch_utils.persistence\n_reconstruct_persistent_obj\n(tR.")
        rc, so, se = run_tool("convert_stylegan2_ada_pkl.py", p, self.path("x.safetensors"))
        self.assertEqual(rc, 2)
        self.assertIn("PYTHONPATH", se)
        self.assertIn("torch_utils", se)

    def test_no_noise_generator(self):
        G = FakeGenerator(img_resolution=8, synthesis_kwargs=dict(channel_base=64, channel_max=8))
        for k in [k for k in G._sd if "noise_" in k]:
            del G._sd[k]
        out = self.path("nn.safetensors")
        buf = io.StringIO()
        with redirect_stdout(buf):
            cn.convert(self.save_pkl(G), out)
        self.assertIn("use_noise=False", buf.getvalue())
        t = st.load_file(out)
        self.assertEqual(float(t["synthesis.b8.conv0.noise_strength"]), 0.0)
        self.assertFalse(t["synthesis.b8.conv0.noise_const"].any())
        self.assertEqual(list(t), list(expected_shapes(st.load_config(out))))


# ----------------------------------------------------------------------------- reference forward

def _fir(x, f, pad, gain):
    """Depthwise 2-D FIR with padding (left, right, top, bottom); f is the normalised 2-D filter."""
    n, c, h, w = x.shape
    x = torch.nn.functional.pad(x, pad)
    k = (torch.flip(f, [0, 1]) * gain).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    return torch.nn.functional.conv2d(x, k, groups=c)


def stylegan2_forward(t, cfg, ws, noise=True):
    """StyleGAN2 'skip' synthesis in float64, written from the DESIGN.md semantics.

    t: NVIDIA-named tensors (torch, float64).  ws: [N, num_ws, w_dim].
    """
    F = torch.nn.functional
    n, w_dim = ws.shape[0], cfg["w_dim"]
    clamp = cfg["conv_clamp"]

    def affine(p, w):
        return w @ (t[p + ".affine.weight"] / math.sqrt(w_dim)).T + t[p + ".affine.bias"]

    def layer(x, p, w, up):
        weight = t[p + ".weight"]
        o, i, k, _ = weight.shape
        wt = weight[None] * affine(p, w)[:, None, :, None, None]
        wt = wt * torch.rsqrt(wt.square().sum([2, 3, 4]) + 1e-8)[:, :, None, None, None]
        xs = x.reshape(1, n * i, *x.shape[2:])
        if up:
            wt = wt.transpose(1, 2).reshape(n * i, o, k, k)
            y = F.conv_transpose2d(xs, wt, stride=2, groups=n)
            y = _fir(y, t[p + ".resample_filter"], (1, 1, 1, 1), 4)
        else:
            y = F.conv2d(xs, wt.reshape(n * o, i, k, k), padding=k // 2, groups=n)
        y = y.reshape(n, o, *y.shape[2:])
        if noise:
            y = y + t[p + ".noise_const"] * t[p + ".noise_strength"]
        y = F.leaky_relu(y + t[p + ".bias"][None, :, None, None], 0.2) * math.sqrt(2)
        return y.clamp(-clamp, clamp) if clamp is not None else y

    def torgb(x, p, w):
        weight = t[p + ".weight"]
        o, i = weight.shape[:2]
        wt = weight[None] * (affine(p, w) / math.sqrt(i))[:, None, :, None, None]
        y = F.conv2d(x.reshape(1, n * i, *x.shape[2:]), wt.reshape(n * o, i, 1, 1), groups=n)
        y = y.reshape(n, o, *y.shape[2:]) + t[p + ".bias"][None, :, None, None]
        return y.clamp(-clamp, clamp) if clamp is not None else y

    x = t["synthesis.b4.const"][None].repeat(n, 1, 1, 1)
    x = layer(x, "synthesis.b4.conv1", ws[:, 0], False)
    img = torgb(x, "synthesis.b4.torgb", ws[:, 1])
    idx = 1
    res = 8
    while res <= cfg["img_resolution"]:
        b = f"synthesis.b{res}"
        x = layer(x, b + ".conv0", ws[:, idx], True)
        x = layer(x, b + ".conv1", ws[:, idx + 1], False)
        up = torch.zeros(n, img.shape[1], 2 * img.shape[2], 2 * img.shape[3], dtype=img.dtype)
        up[:, :, ::2, ::2] = img
        img = _fir(up, t[b + ".resample_filter"], (2, 1, 2, 1), 4) + torgb(x, b + ".torgb", ws[:, idx + 2])
        idx += 2
        res *= 2
    return img


def mapping_forward(t, cfg, z, psi=1.0):
    x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
    lr = cfg["lr_multiplier"]
    for i in range(cfg["mapping_layers"]):
        w, b = t[f"mapping.fc{i}.weight"], t[f"mapping.fc{i}.bias"]
        x = x @ (w * (lr / math.sqrt(w.shape[1]))).T + b * lr
        x = torch.nn.functional.leaky_relu(x, 0.2) * math.sqrt(2)
    x = t["mapping.w_avg"] + psi * (x - t["mapping.w_avg"])
    return x[:, None].repeat(1, cfg["num_ws"], 1)


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


class ReferenceDataTest(unittest.TestCase):
    """The layout + semantics of ganinv's StyleGAN2, run in float64 torch, against reference images."""

    def load(self, path):
        cfg = st.load_config(path)
        t = {k: torch.from_numpy(v).double() for k, v in st.load_file(path).items()}
        return t, cfg

    def test_nvidia_fixture(self):
        d = [d for d in FIXTURE_DIRS if os.path.isfile(os.path.join(d, "generator_case.safetensors"))]
        if not d:
            self.skipTest("stylegan2_tiny fixture not found")
        t, cfg = self.load(os.path.join(d[0], "generator.safetensors"))
        case = st.load_file(os.path.join(d[0], "generator_case.safetensors"))
        ws = mapping_forward(t, cfg, torch.from_numpy(case["z"]).double())
        self.assertLess(rel_l2(ws, case["ws"]), 1e-6)
        ws_t = mapping_forward(t, cfg, torch.from_numpy(case["z"]).double(), psi=0.7)
        self.assertLess(rel_l2(ws_t, case["ws_trunc"]), 1e-6)
        img = stylegan2_forward(t, cfg, torch.from_numpy(case["ws_trunc"]).double())
        self.assertLess(rel_l2(img, case["img"]), 1e-5)
        img = stylegan2_forward(t, cfg, torch.from_numpy(case["ws_trunc"]).double(), noise=False)
        self.assertLess(rel_l2(img, case["img_noise_none"]), 1e-5)

    def test_rosinality_tiny(self):
        d = os.path.join(REPO, "tests", "data", "rosinality_tiny")
        if not os.path.isfile(os.path.join(d, "case.safetensors")):
            self.skipTest("tests/data/rosinality_tiny not found")
        t, cfg = self.load(os.path.join(d, "generator.safetensors"))
        case = st.load_file(os.path.join(d, "case.safetensors"))
        np.testing.assert_array_equal(t["mapping.w_avg"].float().numpy(), case["latent_avg"])
        z = torch.from_numpy(case["z"]).double()
        for psi, ws_key, img_key in ((1.0, "ws", "img"), (0.7, "ws_trunc", "img_trunc")):
            ws = mapping_forward(t, cfg, z, psi)
            self.assertLess(rel_l2(ws, case[ws_key]), 1e-6)
            img = stylegan2_forward(t, cfg, ws)
            self.assertLess(rel_l2(img, case[img_key]), 1e-5, img_key)


if __name__ == "__main__":
    unittest.main(verbosity=2)
