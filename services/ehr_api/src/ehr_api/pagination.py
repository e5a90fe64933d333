"""Limit/offset paging shared by the list services, checked the same way everywhere."""

from __future__ import annotations

from ehr_api.errors import InvalidError

__all__ = ["check_page"]


def check_page(limit: int, offset: int, *, max_page: int) -> None:
    """Refuse a page size outside ``1..max_page`` or a negative offset.

    Raises:
        InvalidError: naming ``limit`` or ``offset``.
    """
    if not 1 <= limit <= max_page:
        raise InvalidError(f"limit must be between 1 and {max_page}", field="limit")
    if offset < 0:
        raise InvalidError("offset must not be negative", field="offset")
