"""Render report blocks (document.py) as GitHub-flavoured Markdown; called by render_report."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from chaosml.report.blocks import Banner, Block, Bullets, Collapsed, Heading, Image, Para, Section, Table

_BANNER_MARK = {"pass": "✅", "fail": "❌", "warn": "⚠️", "info": "ℹ️"}


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _render(blocks: Sequence[Block], base_dir: Path | None, out: list[str]) -> None:
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Banner):
            out.append(f"> {_BANNER_MARK.get(b.kind, '')} **{b.text}**")
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Table):
            links = [b.header_links[i] if i < len(b.header_links) else "" for i in range(len(b.headers))]
            headers = [f"[{_esc(h)}](#{a})" if a else _esc(h or " ") for h, a in zip(b.headers, links, strict=True)]
            lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
            for i, row in enumerate(b.rows):
                rid = b.row_ids[i] if i < len(b.row_ids) else ""
                cells = [_esc(c) for c in row]
                if rid and cells:
                    cells[0] = f'<a id="{rid}"></a>{cells[0]}'
                lines.append("| " + " | ".join(cells) + " |")
            out.append("\n".join(lines))
        elif isinstance(b, Image):
            rel = b.path
            if base_dir is not None:
                try:
                    rel = b.path.relative_to(base_dir)
                except ValueError:
                    rel = b.path
            out.append(f"![{b.alt}]({rel.as_posix()})")
        elif isinstance(b, Section):
            _render(b.blocks, base_dir, out)
        elif isinstance(b, Collapsed):  # GitHub renders Markdown inside <details> when blank lines surround it
            out.append(f"<details><summary>{html.escape(b.label)}</summary>")
            _render(b.blocks, base_dir, out)
            out.append("</details>")


def render_markdown(blocks: Sequence[Block], base_dir: Path | None = None) -> str:
    """Markdown text; images are linked relative to ``base_dir`` (the run directory)."""
    out: list[str] = []
    _render(blocks, base_dir, out)
    return "\n\n".join(out) + "\n"
