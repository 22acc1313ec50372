#!/usr/bin/env python3
"""Tests of the loss-network converters (tools/convert_torchvision_vgg16.py,
tools/convert_lpips_lin.py) and of the PyTorch reference models (tools/torch_loss_models.py).

No pretrained weights can be downloaded here, so the VGG16 converter runs on a randomly
initialised state dict laid out exactly as torchvision's vgg16() (built here without
torchvision), and the LPIPS converter on the fixture's real lin tensors round-tripped through a
.pth written with torch.

Needs numpy and torch (Debian's python3-torch):
    /usr/bin/python3 -m unittest discover -s tools/tests -p 'test_loss*.py' -v
"""
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import unittest
from collections import OrderedDict

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

import convert_lpips_lin as cl  # noqa: E402
import convert_torchvision_vgg16 as cv  # noqa: E402
import safetensors_lite as st  # noqa: E402
import torch_loss_models as tm  # noqa: E402

LPIPS_DIR = os.path.join(REPO, "tests", "data", "lpips")


def torchvision_like_vgg16_state_dict(seed=0):
    """The state dict of torchvision's vgg16(): features (convs, ReLUs, pools) + classifier."""
    torch.manual_seed(seed)
    layers, c = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
        else:
            layers += [torch.nn.Conv2d(c, v, 3, padding=1), torch.nn.ReLU(inplace=True)]
            c = v
    model = torch.nn.Module()
    model.features = torch.nn.Sequential(*layers)
    model.classifier = torch.nn.Sequential(torch.nn.Linear(512, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    return model.state_dict(), model.features


class TempDir(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)


class Vgg16ConverterTest(TempDir):
    def test_full_model_state_dict(self):
        sd, features = torchvision_like_vgg16_state_dict()
        torch.save(sd, self.path("vgg16.pth"))
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(cv.main([self.path("vgg16.pth"), self.path("vgg16.safetensors")]), 0)
        out = st.load_file(self.path("vgg16.safetensors"))
        self.assertEqual(len(out), 26)
        for idx, cin, cout, _ in cv.VGG16_CONVS:
            np.testing.assert_array_equal(out[f"features.{idx}.weight"], sd[f"features.{idx}.weight"].numpy())
            np.testing.assert_array_equal(out[f"features.{idx}.bias"], sd[f"features.{idx}.bias"].numpy())
        # the converted file drives the reference model exactly like the torch module itself
        trunk = tm.vgg16_from_file(self.path("vgg16.safetensors"))
        x = torch.randn(1, 3, 32, 32)
        ref = features[:30](x)  # through relu5_3
        lp = tm.LpipsVgg(trunk, [torch.ones(c) for c in (64, 128, 256, 512, 512)])
        lp.shift.zero_()
        lp.scale.fill_(1.0)
        torch.testing.assert_close(lp.features(x)[-1], ref)

    def test_features_only_and_lpips_naming(self):
        sd, features = torchvision_like_vgg16_state_dict(1)
        torch.save(features.state_dict(), self.path("features.pth"))  # keys '0.weight', ...
        lpips_names = OrderedDict()
        for k, v in sd.items():
            if k.startswith("features."):
                idx = int(k.split(".")[1])
                s = 1 if idx < 4 else 2 if idx < 9 else 3 if idx < 16 else 4 if idx < 23 else 5
                lpips_names[f"net.slice{s}.{idx}.{k.split('.')[2]}"] = v
        torch.save(lpips_names, self.path("lpips_trunk.pth"))
        with contextlib.redirect_stdout(io.StringIO()):
            for name in ("features.pth", "lpips_trunk.pth"):
                self.assertEqual(cv.main([self.path(name), self.path(name + ".safetensors")]), 0)
                out = st.load_file(self.path(name + ".safetensors"))
                np.testing.assert_array_equal(out["features.28.bias"], sd["features.28.bias"].numpy())

    def test_rejects_other_networks(self):
        sd, _ = torchvision_like_vgg16_state_dict()
        del sd["features.14.weight"]
        with self.assertRaisesRegex(cv.ConversionError, r"missing tensor 'features.14.weight' \(conv3_3.weight\)"):
            cv.convert_state_dict(sd)
        sd, _ = torchvision_like_vgg16_state_dict()
        sd["features.30.weight"] = torch.zeros(512, 512, 3, 3)  # a VGG19-like extra conv
        with self.assertRaisesRegex(cv.ConversionError, "unexpected feature tensors features.30.weight"):
            cv.convert_state_dict(sd)
        sd, _ = torchvision_like_vgg16_state_dict()
        sd["features.0.weight"] = torch.zeros(64, 1, 3, 3)
        with self.assertRaisesRegex(cv.ConversionError, r"has shape \[64, 1, 3, 3\], expected \[64, 3, 3, 3\]"):
            cv.convert_state_dict(sd)
        with self.assertRaisesRegex(cv.ConversionError, "no VGG16 feature tensors"):
            cv.convert_state_dict({"mapping.fc0.weight": np.zeros((2, 2), np.float32)})

    def test_cli_errors(self):
        with open(self.path("junk.pth"), "wb") as f:
            f.write(b"not a torch file")
        for args in ([self.path("missing.pth"), self.path("o.safetensors")],
                     [self.path("junk.pth"), self.path("o.safetensors")]):
            r = subprocess.run([sys.executable, os.path.join(TOOLS, "convert_torchvision_vgg16.py")] + args,
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertTrue(r.stderr.startswith("error: "), r.stderr)


class LpipsLinConverterTest(TempDir):
    def test_fixture_round_trip(self):
        fixture = st.load_file(os.path.join(LPIPS_DIR, "lpips_vgg_weights.safetensors"))
        lins = OrderedDict((f"lin{k}.model.1.weight", torch.from_numpy(fixture[f"lin{k}.model.1.weight"]))
                           for k in range(5))
        torch.save(lins, self.path("vgg.pth"))
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(cl.main([self.path("vgg.pth"), self.path("lin.safetensors")]), 0)
        out = st.load_file(self.path("lin.safetensors"))
        self.assertEqual(list(out), [f"lin{k}.model.1.weight" for k in range(5)])
        for k in range(5):
            np.testing.assert_array_equal(out[f"lin{k}.model.1.weight"], fixture[f"lin{k}.model.1.weight"])

    def test_rejects(self):
        good = {f"lin{k}.model.1.weight": np.full((1, c, 1, 1), 0.1, np.float32)
                for k, c in enumerate(cl.LPIPS_VGG_CHANNELS)}
        bad = dict(good)
        bad["lin2.model.1.weight"] = np.full((1, 384, 1, 1), 0.1, np.float32)
        with self.assertRaisesRegex(cv.ConversionError, r"'lin2.model.1.weight' has shape \[1, 384, 1, 1\]"):
            cl.convert_state_dict(bad)
        bad = dict(good)
        bad["lin0.model.1.weight"] = -bad["lin0.model.1.weight"]
        with self.assertRaisesRegex(cv.ConversionError, "negative"):
            cl.convert_state_dict(bad)
        bad = dict(good)
        del bad["lin4.model.1.weight"]
        with self.assertRaisesRegex(cv.ConversionError, "missing 'lin4.model.1.weight'"):
            cl.convert_state_dict(bad)
        with self.assertRaisesRegex(cv.ConversionError, "no LPIPS linear weights"):
            cl.convert_state_dict({"features.0.weight": np.zeros((64, 3, 3, 3), np.float32)})


class TorchReferenceTest(unittest.TestCase):
    def test_lpips_reference_reproduces_the_official_fixture(self):
        w = st.load_file(os.path.join(LPIPS_DIR, "lpips_vgg_weights.safetensors"))
        case = st.load_file(os.path.join(LPIPS_DIR, "lpips_case.safetensors"))
        trunk = tm.vgg16_hash_rule()
        np.testing.assert_array_equal(trunk[0][0].flatten()[:8].numpy(), w["trunk_check.slice1.0.weight.first8"])
        # The reference runs in float64: float32 backward through 13 convolutions depends on the
        # CPU's kernels (oneDNN on an AMD EPYC gave a 2e-3 relative gradient error where the
        # plain kernels give 9e-6), and a reference must not depend on the machine.
        f64 = torch.float64
        trunk = [(wt.to(f64), b.to(f64)) for wt, b in trunk]
        lp = tm.LpipsVgg(trunk, [torch.from_numpy(w[f"lin{k}.model.1.weight"]).to(f64) for k in range(5)]).to(f64)
        a = torch.from_numpy(case["a"]).to(f64).requires_grad_(True)
        d = lp(a, torch.from_numpy(case["b"]).to(f64))
        d.sum().backward()
        np.testing.assert_allclose(d.detach().numpy(), case["distance"], rtol=1e-6)
        err = np.linalg.norm(a.grad.numpy() - case["grad_a"]) / np.linalg.norm(case["grad_a"])
        self.assertLess(err, 1e-5)


if __name__ == "__main__":
    unittest.main()
