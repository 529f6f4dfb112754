"""Hooks that rewrite the gradients before each optimizer step: decays and clipping."""

from minidl.optim.hooks.clip import GradientClip, GradientHardClip
from minidl.optim.hooks.decay import L1Decay, WeightDecay
from minidl.optim.hooks.hook import Hook

__all__ = ["GradientClip", "GradientHardClip", "Hook", "L1Decay", "WeightDecay"]
