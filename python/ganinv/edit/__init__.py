"""Editing directions (SeFa, GANSpace, InterFaceGAN) and code edits (moving along a direction,
style mixing)."""

from .._ganinv.edit import Directions, apply_direction, ganspace, load_directions, sefa, style_mix
from . import interfacegan

__all__ = ["Directions", "apply_direction", "ganspace", "interfacegan", "load_directions", "sefa", "style_mix"]
