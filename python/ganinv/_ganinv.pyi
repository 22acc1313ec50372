"""
ganinv's C++ core (StyleGAN2 generator, inverter, editors, metrics) on the CPU, and on a GPU for
generators loaded with device="cuda" (builds with the CUDA path: cuda_built()).
"""

from typing import Annotated, Any

import numpy
from numpy.typing import NDArray

from ganinv import (
    Error as Error,
    FormatError as FormatError,
    IoError as IoError,
    ShapeError as ShapeError,
    ValueError as ValueError
)
from ganinv._ganinv import edit as edit, metrics as metrics


class EncodeResult:
    """What ganinv.Encoder.encode found, per image."""

    @property
    def ws(self) -> Annotated[NDArray[numpy.float32], dict(order='C', device='cpu')]:
        """codes [N, num_ws, w_dim] (W+): what ganinv.invert's init= takes"""

    @property
    def images(self) -> Annotated[NDArray[numpy.float32], dict(order='C', device='cpu')]:
        """reconstructions [N, C, R, R] (unclamped, the generator's constant noise)"""

    @property
    def psnr(self) -> list[float]:
        """per image, dB, after the last pass: as ganinv.invert's psnr"""

    @property
    def ssim(self) -> list[float]:
        """per image, after the last pass"""

    @property
    def psnr_per_iteration(self) -> Annotated[NDArray[numpy.float64], dict(order='C', device='cpu')]:
        """float64 [iterations, N]: PSNR after each pass"""

    @property
    def iterations(self) -> int: ...

    @property
    def seconds(self) -> float:
        """wall time of the passes and syntheses"""

class Encoder:
    """An encoder file (pSp, e4e or ReStyle) for one generator, on the CPU."""

    @staticmethod
    def load(path: str) -> Encoder:
        """
        Loads an encoder file written by `ganinv train-encoder` (a checkpoint or its --export).
        """

    @property
    def num_ws(self) -> int: ...

    @property
    def w_dim(self) -> int: ...

    @property
    def resolution(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def num_params(self) -> int: ...

    @property
    def architecture(self) -> str:
        """'psp' or 'e4e'"""

    @property
    def iterative(self) -> bool: ...

    @property
    def iterations(self) -> int:
        """refinement passes it was trained with (1 for a single-pass encoder)"""

    @property
    def path(self) -> str: ...

    def encode(self, g: Generator, images: Annotated[NDArray, dict(writable=False)], iterations: int | None = None, bootstrap: Encoder | None = None) -> EncodeResult:
        """
        Codes of images (float32 [N, C, R, R] in [-1, 1], or uint8 [N, R, R, C]) for the generator g it was trained for: one pass, or `iterations` refinement passes of an iterative encoder (default: the number it was trained with); `bootstrap` (a single-pass Encoder) starts the refinement at its codes instead of the mean code (ReStyle's encoder bootstrapping; required for an encoder trained with `train-encoder --bootstrap`).
        """

    @property
    def bootstrap(self) -> str:
        """fingerprint of the single-pass encoder it was trained to refine ('' : the mean code)"""

class Generator:
    """A StyleGAN2 generator (mapping + synthesis) on the CPU or a GPU."""

    @staticmethod
    def load(path: str, device: str = 'cpu', precision: str = 'fp32') -> Generator:
        """
        Loads a generator file (safetensors with its config). device: 'cpu', 'cuda' or 'cuda:N' (needs ganinv.cuda_available()); precision 'tf32' or 'bf16' (tensor-core convolutions) on CUDA only.
        """

    @property
    def z_dim(self) -> int: ...

    @property
    def w_dim(self) -> int: ...

    @property
    def num_ws(self) -> int: ...

    @property
    def resolution(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def style_dim(self) -> int: ...

    @property
    def path(self) -> str: ...

    @property
    def device(self) -> str:
        """'cpu' or 'cuda:N'"""

    @property
    def device_name(self) -> str:
        """the GPU and its convolution precision (device='cuda'), else 'cpu'"""

    def mapping(self, z: Annotated[NDArray, dict(writable=False)], psi: float = 1.0, cutoff: int | None = None, stream: int | None = None) -> NDArray[numpy.float32] | Any:
        """
        ws [N, num_ws, w_dim] from z [N, z_dim] (float32, C-contiguous; read in place). psi < 1 truncates towards the mean w on the first `cutoff` layers (all when None). On a CUDA generator a CUDA z gives a CUDA result (DLPack) and a host z a NumPy one; `stream` (an int cudaStream_t, None = the default stream) orders the work after what is queued there and the result before what is queued later.
        """

    def synthesis(self, ws: Annotated[NDArray, dict(writable=False)], noise_mode: str = 'const', noise_seed: int = 0, stream: int | None = None) -> NDArray[numpy.float32] | Any:
        """
        Images [N, C, R, R] (about [-1, 1], unclamped) from ws [N, num_ws, w_dim] (float32, C-contiguous; read in place). noise_mode: 'const' (the generator's maps), 'none' or 'random' (from noise_seed). CUDA generators: results where ws lives, `stream` as for mapping.
        """

    def seed_z(self, seed: int, count: int = 1) -> NDArray[numpy.float32]:
        """
        z [count, z_dim] of the official seeds seed .. seed + count - 1 (numpy RandomState(seed).randn).
        """

    def __repr__(self) -> str: ...

class InversionResult:
    """What ganinv.invert found, per image."""

    @property
    def space(self) -> str:
        """the latent space: z, w, wplus or s"""

    @property
    def ws(self) -> object:
        """codes [N, num_ws, w_dim] (S space: the ws it started from)"""

    @property
    def z(self) -> object:
        """z [N, z_dim] (Z space), else None"""

    @property
    def styles(self) -> object:
        """styles [N, style_dim] (S space), else None"""

    @property
    def noise(self) -> list:
        """optimised noise maps, one [N, R, R] per layer (optimize_noise)"""

    @property
    def images(self) -> object:
        """reconstructions [N, C, R, R] (unclamped)"""

    @property
    def images_fixed_noise(self) -> object:
        """
        reconstructions with the generator's fixed noise (optimize_noise), else None
        """

    @property
    def loss_history(self) -> object:
        """float64 [steps, N]: each image's loss per step"""

    @property
    def psnr(self) -> list[float]:
        """per image, dB: reconstruction (clamped) vs target, data range 2"""

    @property
    def ssim(self) -> list[float]:
        """per image, as psnr"""

    @property
    def mse(self) -> list[float]:
        """per image, as psnr"""

    @property
    def psnr_fixed_noise(self) -> list[float]:
        """per image, images_fixed_noise (optimize_noise)"""

    @property
    def ssim_fixed_noise(self) -> list[float]:
        """per image, images_fixed_noise (optimize_noise)"""

    @property
    def stopped_at(self) -> list[int]:
        """per image, the step it stopped at"""

    @property
    def steps_run(self) -> int: ...

    @property
    def seconds(self) -> float:
        """wall time of the optimisation"""

    def __repr__(self) -> str: ...

def invert(g: Generator, targets: Annotated[NDArray, dict(writable=False)], *, space: str = 'wplus', loss: str = 'mse', optimizer: str = 'adam', steps: int = 500, optimize_noise: bool = False, seed: int = 0, init: object | None = None, progress: object = True, lr: float = 0.1, schedule: bool = True, lr_rampup: float = 0.05, lr_rampdown: float = 0.25, w_noise: float = 0.05, noise_regularization: float = 100000.0, w_avg_prior: float = 0.0, wplus_spread_prior: float = 0.0, target_loss: float | None = None, patience: int = 0, lbfgs_history: int = 10, population: int = 0, sigma: float = 0.5, inner_steps: int = 30, final_steps: int = 300, vgg_weights: str | None = None, lpips_weights: str | None = None, identity_weights: str | None = None) -> InversionResult:
    """
    Finds the codes of target images (see ganinv/__init__.pyi for every argument).
    """

def load_image(path: str, max_pixels: int = 67108864) -> NDArray[numpy.uint8]:
    """
    An image file (PNG, JPEG, BMP, ...) as uint8 [H, W, C] (C = 1, 3 or 4).
    """

def save_image(path: str, image: Annotated[NDArray, dict(writable=False)], jpeg_quality: int = 95) -> None:
    """
    Writes uint8 [H, W, C] / [H, W], or float32 [C, H, W] / [1, C, H, W] in [-1, 1] (converted as the official scripts do), in the format the extension names (.png, .jpg, .bmp).
    """

def image_to_tensor(image: Annotated[NDArray, dict(writable=False)], channels: int) -> NDArray[numpy.float32]:
    """
    uint8 [H, W, C] -> float32 [1, channels, H, W] in [-1, 1], as `ganinv invert` reads its targets.
    """

def load_tensors(path: str) -> dict[str, NDArray[numpy.float32]]:
    """
    Every tensor of a safetensors file as float32 NumPy arrays (codes from `ganinv invert`, `generate --out-tensor`, ...).
    """

def save_tensors(path: str, tensors: dict) -> None:
    """
    Writes a dict of float32 arrays as a safetensors file (readable by the ganinv tool, e.g. --init, --ws).
    """

def cuda_available() -> bool:
    """
    True when this build of the package has the CUDA path (nvcc was found when it was built) and a CUDA device is usable now; Generator.load(..., device='cuda') needs it.
    """

def cuda_built() -> bool:
    """
    Whether this build of the package has the CUDA path at all (False: built without nvcc).
    """
