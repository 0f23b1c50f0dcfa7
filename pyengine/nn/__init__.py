"""Layers (pyengine.nn); the layer API grows in its own issue. F is pyengine.nn.functional."""

from .. import functional  # noqa: F401

__all__ = ["functional"]
