"""Render report blocks (document.py) as one self-contained HTML page; called by render_report.

Self-contained: CSS inline, PNG plots embedded as base64 data URIs, no external URL anywhere, so
the file can be mailed, attached to CI artefacts or opened offline.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from chaosml.report.blocks import Banner, Block, Bullets, Collapsed, Heading, Image, Para, Section, Table

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529;
       max-width: 1200px; margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .3em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #dee2e6; }
table { border-collapse: collapse; margin: .6em 0; font-size: 13px; }
th, td { border: 1px solid #dee2e6; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f1f3f5; } tr.fail td { background: #fff5f5; } tr.inconclusive td { background: #fff9db; }
tr.pass td:first-child { color: #2b8a3e; font-weight: 600; } tr.fail td:first-child { color: #c92a2a; font-weight: 600; }
tr.inconclusive td:first-child { color: #e67700; font-weight: 600; }
.banner { padding: .5em .8em; border-radius: 4px; margin: .4em 0; font-weight: 600; }
.banner.pass { background: #ebfbee; color: #2b8a3e; } .banner.fail { background: #fff5f5; color: #c92a2a; }
.banner.warn { background: #fff9db; color: #e67700; } .banner.info { background: #e7f5ff; color: #1864ab; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #dee2e6; }
figcaption { font-size: 12px; color: #495057; }
#summary ul { margin: .4em 0; padding-left: 1.4em; } #summary li.fail { color: #c92a2a; }
#summary li.inconclusive { color: #e67700; } #summary figure { margin: .5em 0; }
details { margin: .6em 0; } details > summary { cursor: pointer; font-weight: 600; }
"""


def _render(blocks: Sequence[Block], body: list[str]) -> None:
    e = html.escape
    for b in blocks:
        if isinstance(b, Heading):
            level = min(max(b.level, 1), 6)
            body.append(f"<h{level}>{e(b.text)}</h{level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{e(b.text)}</p>")
        elif isinstance(b, Banner):
            body.append(f'<div class="banner {e(b.kind)}">{e(b.text)}</div>')
        elif isinstance(b, Bullets):
            kinds = [b.kinds[i] if i < len(b.kinds) else "" for i in range(len(b.items))]
            items = "".join(f'<li class="{e(k)}">{e(t)}</li>' if k else f"<li>{e(t)}</li>" for t, k in zip(b.items, kinds, strict=True))
            body.append(f"<ul>{items}</ul>")
        elif isinstance(b, Table):
            links = [b.header_links[i] if i < len(b.header_links) else "" for i in range(len(b.headers))]
            head = "".join(f'<th><a href="#{e(a)}">{e(h)}</a></th>' if a else f"<th>{e(h)}</th>"
                           for h, a in zip(b.headers, links, strict=True)) if any(b.headers) else ""
            rows = []
            for i, row in enumerate(b.rows):
                kind = b.row_kinds[i] if i < len(b.row_kinds) else ""
                rid = b.row_ids[i] if i < len(b.row_ids) else ""
                attrs = (f' id="{e(rid)}"' if rid else "") + (f' class="{e(kind)}"' if kind else "")
                rows.append(f"<tr{attrs}>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
            thead = f"<thead><tr>{head}</tr></thead>" if head else ""
            body.append(f"<table>{thead}<tbody>{''.join(rows)}</tbody></table>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img id="plot-{e(b.name)}" alt="{e(b.alt)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{e(b.alt)}</figcaption></figure>"
            )
        elif isinstance(b, Section):
            body.append(f'<section id="{e(b.anchor)}">')
            _render(b.blocks, body)
            body.append("</section>")
        elif isinstance(b, Collapsed):
            body.append(f"<details><summary>{e(b.label)}</summary>")
            _render(b.blocks, body)
            body.append("</details>")


def render_html(blocks: Sequence[Block], title: str) -> str:
    """One HTML document with the plots inlined."""
    body: list[str] = []
    _render(blocks, body)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
