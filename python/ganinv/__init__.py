"""ganinv: GAN inversion (StyleGAN2) from ganinv's C++ core, on the CPU or a GPU.

Arrays cross without copies: float32, C-contiguous NumPy arrays and PyTorch CPU tensors are read
in place; results are NumPy arrays that own the C++ buffers. The GIL is released while ganinv
computes. Errors are ganinv.Error (and subclasses) with the C++ library's messages; a wrong dtype
or shape is a ValueError (ganinv.ValueError / ganinv.ShapeError) naming the argument.

    g = ganinv.Generator.load("models/fmnist32.safetensors")
    ws = g.mapping(g.seed_z(42), psi=0.7)        # [1, num_ws, w_dim]
    img = g.synthesis(ws)                         # [1, C, R, R] in [-1, 1]
    res = ganinv.invert(g, img, steps=100)        # res.ws, res.images, res.psnr, ...
    e = ganinv.Encoder.load("models/fmnist32_encoder.safetensors")
    codes = e.encode(g, img).ws                   # one pass (learning-based inversion)
    res = ganinv.invert(g, img, init=codes, steps=100)   # hybrid: start from the encoder's codes

On a GPU (cuda_available(); builds made where nvcc was found): Generator.load(path, device="cuda")
runs mapping, synthesis and invert there; CUDA tensors (PyTorch, CuPy) are read in place and CUDA
results come back as DLPack arrays (torch.from_dlpack wraps them without a copy).
"""

from ._ganinv import (
    EncodeResult,
    Encoder,
    Error,
    FormatError,
    Generator,
    InversionResult,
    IoError,
    ShapeError,
    ValueError,
    __version__,
    cuda_available,
    cuda_built,
    image_to_tensor,
    invert,
    load_image,
    load_tensors,
    save_image,
    save_tensors,
)
from . import edit, metrics

__all__ = [
    "EncodeResult",
    "Encoder",
    "Error",
    "FormatError",
    "Generator",
    "InversionResult",
    "IoError",
    "ShapeError",
    "ValueError",
    "__version__",
    "cuda_available",
    "cuda_built",
    "edit",
    "image_to_tensor",
    "invert",
    "load_image",
    "load_tensors",
    "metrics",
    "save_image",
    "save_tensors",
]
