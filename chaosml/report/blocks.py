"""The format-neutral blocks a report is made of, and the formatting of values in them; used by document.py and summary.py.

markdown.py and html.py render the blocks; the game-day and compare reports build their own from the same types.
"""

from __future__ import annotations

import datetime as dt
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
    # Per header: the anchor of its definition ("" = none), rendered as a link to it.
    header_links: tuple[str, ...] = field(default_factory=tuple)
    # Per row: an anchor id the row carries ("" = none), the target of those links.
    row_ids: tuple[str, ...] = field(default_factory=tuple)


def definition_anchor(figure: str) -> str:
    """The anchor of a figure's row in the report's Definitions table (an SLI name, ``phase X``, ...)."""
    return "def-" + "-".join(figure.replace("_", "-").split())


def definition_links(*figures: str) -> tuple[str, ...]:
    """Table.header_links to the Definitions rows of these figures ("" = a column without one)."""
    return tuple(definition_anchor(f) if f and f != "requests" else "" for f in figures)


@dataclass(frozen=True, slots=True)
class Image:
    name: str
    path: Path
    alt: str


@dataclass(frozen=True, slots=True)
class Bullets:
    """A list of sentences; ``kinds`` gives each item's CSS class for HTML (e.g. "fail"), Markdown ignores it."""

    items: tuple[str, ...]
    kinds: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Section:
    """Blocks kept together under an anchor (HTML ``<section id=...>``); Markdown renders the blocks alone."""

    anchor: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Collapsed:
    """Blocks shown only on request: ``<details>`` with ``label`` as its summary line (also in GitHub Markdown)."""

    label: str
    blocks: tuple[Block, ...]


Block = Heading | Para | Banner | Table | Image | Bullets | Section | Collapsed

# ----------------------------------------------------------------------------- formatting

RATIO_SLIS = (
    "success_ratio", "error_ratio", "timeout_ratio", "rejected_ratio", "invalid_ratio", "primary_ratio", "fallback_ratio",
    "default_ratio", "accuracy", "confident_wrong_ratio",
)


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "n/a"
    pct = 100.0 * x
    if 0 < pct < 0.01 or 99.99 < pct < 100:
        return f"{pct:.3f}%"
    return f"{pct:.2f}%"


def fmt_ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f} ms"


def fmt_s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f} s"


def fmt_num(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}"


def fmt_sli(sli: str, x: float | None) -> str:
    """A value of an SLI, in that SLI's unit."""
    if sli in RATIO_SLIS:
        return fmt_ratio(x)
    if sli.endswith("_ms"):
        return fmt_ms(x)
    if sli.endswith("_s"):
        return fmt_s(x)
    if sli == "throughput_rps":
        return "n/a" if x is None else f"{x:.1f} req/s"
    return fmt_num(x)


def fmt_time(epoch: float | None) -> str:
    if epoch is None:
        return "n/a"
    return dt.datetime.fromtimestamp(float(epoch), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
