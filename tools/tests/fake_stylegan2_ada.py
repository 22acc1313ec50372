"""A stand-in for an NVIDIA stylegan2-ada-pytorch G_ema, for the converter tests.

The converter only uses `init_kwargs`, `num_ws`, `synthesis.b{res}.architecture`
and `state_dict()`; this class provides exactly those, with random tensors
under the layout of tools/stylegan2_layout.py.  It lives in its own module so
that a pickle of it can be loaded by the converter running as a subprocess
(with this folder on PYTHONPATH).
"""

from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import torch

from stylegan2_layout import expected_shapes, filter_buffer, num_ws_for


class FakeGenerator:
    def __init__(self, seed=0, z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                 mapping_kwargs=None, synthesis_kwargs=None):
        self.init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
                                img_resolution=img_resolution, img_channels=img_channels,
                                mapping_kwargs=dict(mapping_kwargs or {}),
                                synthesis_kwargs=dict(synthesis_kwargs or {}))
        self.num_ws = num_ws_for(img_resolution)
        sk = self.init_kwargs["synthesis_kwargs"]
        arch = sk.get("architecture", "skip")
        self.synthesis = SimpleNamespace(**{
            f"b{2 ** i}": SimpleNamespace(architecture=arch)
            for i in range(2, int(np.log2(img_resolution)) + 1)})
        cfg = dict(architecture="skip", z_dim=z_dim, c_dim=0, w_dim=w_dim,
                   img_resolution=img_resolution, img_channels=img_channels,
                   mapping_layers=self.init_kwargs["mapping_kwargs"].get("num_layers", 8),
                   channel_base=sk.get("channel_base", 32768), channel_max=sk.get("channel_max", 512),
                   resample_filter=sk.get("resample_filter", [1, 3, 3, 1]))
        g = torch.Generator().manual_seed(seed)
        self._sd = OrderedDict()
        for name, shape in expected_shapes(cfg).items():
            if name.endswith("resample_filter"):
                t = torch.from_numpy(filter_buffer(cfg["resample_filter"]))
            else:
                t = torch.randn(shape, generator=g)
            self._sd[name] = t

    def state_dict(self):
        return OrderedDict((k, v.clone()) for k, v in self._sd.items())
