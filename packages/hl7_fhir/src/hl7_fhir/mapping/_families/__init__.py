"""One module per v2 message family; importing them registers their mappers."""

from . import adt, orders, results, schedule

__all__ = ["adt", "orders", "results", "schedule"]
