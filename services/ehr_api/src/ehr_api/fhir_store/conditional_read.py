"""Conditional read (FHIR http.html#cread, RFC 9110 section 13): answer 304 Not Modified
when the client's copy is current, so caches and sync clients skip the body.

`If-None-Match` names versions the client holds (`W/"3"`, `"3"`, several, or `*`); when it
is present `If-Modified-Since` is not looked at. `If-Modified-Since` is an HTTP date; one
that does not parse is ignored, as RFC 9110 says. The same rules serve a bundle's GET
entries (`request.ifNoneMatch`, `request.ifModifiedSince`, the latter an instant there).
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

__all__ = ["not_modified"]


def not_modified(
    version_id: int,
    last_updated: datetime,
    *,
    if_none_match: str | None,
    if_modified_since: str | None,
) -> bool:
    """Whether the client's copy (as its headers describe it) is the current version."""
    if if_none_match is not None:
        tags = [tag.strip() for tag in if_none_match.split(",")]
        current = str(version_id)
        return any(tag == "*" or tag.removeprefix("W/").strip('"') == current for tag in tags)
    if if_modified_since is None:
        return False
    since = _moment(if_modified_since)
    # HTTP dates have whole seconds: a change within the same second is not newer.
    return since is not None and last_updated.replace(microsecond=0) <= since


def _moment(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else None
