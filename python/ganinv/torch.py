"""ganinv's generator inside PyTorch: forward and backward through ganinv's C++ code.

    synth = ganinv.torch.Synthesis(g)
    img = synth(ws)            # ws: float32 tensor [N, num_ws, w_dim], requires_grad allowed
    loss(img, target).backward()  # ws.grad from ganinv's own synthesis backward

With a generator loaded with device="cuda", ws and the images are CUDA tensors: ganinv reads ws in
place and hands the images over through DLPack without copies, ordered on PyTorch's current
stream. Importing this module needs torch; the rest of ganinv does not.
"""

import torch

__all__ = ["Synthesis", "SynthesisFunction"]


def _stream_of(tensor):
    """The cudaStream_t PyTorch queues work for `tensor` on (None for CPU tensors)."""
    if tensor.is_cuda:
        return torch.cuda.current_stream(tensor.device).cuda_stream
    return None


def _to_torch(result):
    """A ganinv result as a tensor without a copy: NumPy (CPU) or DLPack (CUDA)."""
    if hasattr(result, "__array_interface__"):
        return torch.from_numpy(result)
    return torch.from_dlpack(result)


class SynthesisFunction(torch.autograd.Function):
    """images = g.synthesis(ws) with d(images)/d(ws) from ganinv (float32 tensors on the
    generator's device: CPU, or CUDA for a generator loaded with device="cuda")."""

    @staticmethod
    def forward(ctx, ws, generator, noise_mode="const", noise_seed=0):
        if ws.is_cuda != generator.device.startswith("cuda"):
            raise ValueError(
                f"ws is on {ws.device} but the generator is on {generator.device}: move one of them"
            )
        ws_values = ws.detach().contiguous()  # read in place by ganinv when already contiguous
        ctx.save_for_backward(ws_values)
        ctx.generator, ctx.noise_mode, ctx.noise_seed = generator, noise_mode, noise_seed
        return _to_torch(generator.synthesis(ws_values, noise_mode, noise_seed, stream=_stream_of(ws_values)))

    @staticmethod
    def backward(ctx, grad_images):
        (ws_values,) = ctx.saved_tensors
        grad_ws = ctx.generator._synthesis_backward(
            ws_values, grad_images.detach().contiguous(), ctx.noise_mode, ctx.noise_seed,
            stream=_stream_of(ws_values),
        )
        return _to_torch(grad_ws), None, None, None


class Synthesis(torch.nn.Module):
    """A torch module around a ganinv.Generator's synthesis (no trainable parameters)."""

    def __init__(self, generator, noise_mode="const", noise_seed=0):
        super().__init__()
        self.generator, self.noise_mode, self.noise_seed = generator, noise_mode, noise_seed

    def forward(self, ws):
        return SynthesisFunction.apply(ws, self.generator, self.noise_mode, self.noise_seed)
