"""ganinv's generator inside PyTorch: forward and backward through ganinv's C++ code.

    synth = ganinv.torch.Synthesis(g)
    img = synth(ws)            # ws: float32 CPU tensor [N, num_ws, w_dim], requires_grad allowed
    loss(img, target).backward()  # ws.grad from ganinv's own synthesis backward

Importing this module needs torch; the rest of ganinv does not.
"""

import torch

__all__ = ["Synthesis", "SynthesisFunction"]


class SynthesisFunction(torch.autograd.Function):
    """images = g.synthesis(ws) with d(images)/d(ws) from ganinv (CPU float32 tensors)."""

    @staticmethod
    def forward(ctx, ws, generator, noise_mode="const", noise_seed=0):
        ws_values = ws.detach().contiguous()  # read in place by ganinv when already contiguous
        ctx.save_for_backward(ws_values)
        ctx.generator, ctx.noise_mode, ctx.noise_seed = generator, noise_mode, noise_seed
        return torch.from_numpy(generator.synthesis(ws_values, noise_mode, noise_seed))

    @staticmethod
    def backward(ctx, grad_images):
        (ws_values,) = ctx.saved_tensors
        grad_ws = ctx.generator._synthesis_backward(
            ws_values, grad_images.detach().contiguous(), ctx.noise_mode, ctx.noise_seed
        )
        return torch.from_numpy(grad_ws), None, None, None


class Synthesis(torch.nn.Module):
    """A torch module around a ganinv.Generator's synthesis (no trainable parameters)."""

    def __init__(self, generator, noise_mode="const", noise_seed=0):
        super().__init__()
        self.generator, self.noise_mode, self.noise_seed = generator, noise_mode, noise_seed

    def forward(self, ws):
        return SynthesisFunction.apply(ws, self.generator, self.noise_mode, self.noise_seed)
