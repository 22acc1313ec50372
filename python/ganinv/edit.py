"""Editing directions (SeFa, GANSpace) and code edits (moving along a direction, style mixing)."""

from ._ganinv.edit import Directions, apply_direction, ganspace, load_directions, sefa, style_mix

__all__ = ["Directions", "apply_direction", "ganspace", "load_directions", "sefa", "style_mix"]
