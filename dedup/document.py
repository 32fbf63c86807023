"""The Document record: one article as read from any input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True, slots=True)
class Document:
    """One news article.

    ``id`` must be unique within a corpus; ``text`` is the body. ``title``,
    ``date``, ``source`` and ``url`` are optional metadata: ``date`` orders
    documents when choosing a cluster's id and canonical member.
    """

    id: str
    text: str
    title: str | None = None
    date: datetime | None = None
    source: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise TypeError(f"Document id must be a non-empty str, got {self.id!r}")
        if not isinstance(self.text, str):
            raise TypeError(f"Document {self.id!r}: text must be a str, got {type(self.text).__name__}")
        if self.date is not None and not isinstance(self.date, datetime):
            raise TypeError(f"Document {self.id!r}: date must be a datetime or None, got {type(self.date).__name__}")


def date_sort_key(date: datetime | None) -> float:
    """A comparable key for a possibly-naive, possibly-missing date (naive = UTC, missing = +inf)."""
    if date is None:
        return float("inf")
    if date.tzinfo is None:
        date = date.replace(tzinfo=timezone.utc)
    return date.timestamp()
