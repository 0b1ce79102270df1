"""The report's format-neutral blocks (heading, paragraph, banner, table, image); built by document.py, rendered by markdown.py and html.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True, slots=True)
class Para:
    text: str


@dataclass(frozen=True, slots=True)
class Banner:
    """A highlighted line; ``kind`` is pass, fail, warn or info."""

    text: str
    kind: str = "info"


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    # Per row CSS class for HTML (e.g. "fail"); Markdown ignores it.
    row_kinds: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Image:
    name: str
    path: Path
    alt: str


Block = Heading | Para | Banner | Table | Image
