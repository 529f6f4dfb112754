"""Weights in and out of other frameworks: PyTorch state dicts (``loadTorchStateDict``, ``saveTorchStateDict``)."""

from minidl.interop.torchstate import loadTorchStateDict, saveTorchStateDict

__all__ = ["loadTorchStateDict", "saveTorchStateDict"]
