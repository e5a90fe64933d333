"""One module per v2 message family; importing them registers their mappers."""

from . import adt

__all__ = ["adt"]
