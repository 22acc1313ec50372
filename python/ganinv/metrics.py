"""Image metrics on float32 [N, C, H, W] batches (read in place): PSNR, SSIM, LPIPS."""

from ._ganinv import _lpips
from ._ganinv.metrics import psnr, ssim

__all__ = ["lpips", "psnr", "ssim"]


def lpips(a, b, lpips_weights, vgg_weights=None):
    """Per-image LPIPS (v0.1, VGG) of two [N, 3, H, W] batches in [-1, 1].

    lpips_weights: the linear weights (safetensors, tools/README.md); vgg_weights: the VGG16
    trunk when the linear file does not carry one.
    """
    return _lpips(a, b, str(lpips_weights), None if vgg_weights is None else str(vgg_weights))
