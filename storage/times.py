"""UTC times for stored rows: SQLite keeps no offset, so every reader re-attaches UTC."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["as_utc", "utc", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """Aware UTC; a naive value (what SQLite gives back) is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)
