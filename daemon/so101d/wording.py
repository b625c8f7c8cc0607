"""Small helpers for messages people read."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 bus error``, ``2 bus errors``: the count with the noun in the right number."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
