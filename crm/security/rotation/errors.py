"""The error every key-rotation step raises when it refuses."""
from __future__ import annotations


class RotationError(RuntimeError):
    """A rotation step refused; the message says why and what to do."""
