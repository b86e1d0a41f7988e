"""HTML building blocks of the reports: one self-contained page, no external resources.

Everything a page needs is inline: figures as base64 ``data:`` URIs, the style sheet and the
few lines of script that sort tables. A page opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from matplotlib.figure import Figure

__all__ = ["Link", "esc", "fmt", "table", "figure_block", "png_data_uri", "figure_data_uri", "page"]

_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".gif": "image/gif",
    ".webp": "image/webp",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;
 color:#1d1d1f;background:#fff;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:1.2em 1.5em 4em}
h1{font-size:1.6em;margin:.3em 0}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{margin-bottom:.3em}
nav{background:#f4f4f6;padding:.6em 1em;border-radius:6px;font-size:.92em}
nav a{margin-right:1em;white-space:nowrap}
.sub{color:#555;font-size:.92em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.86em}
th,td{border:1px solid #ccc;padding:.2em .55em;text-align:right;vertical-align:top}
th{background:#f0f0f3}td.k,th.k{text-align:left}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:after{content:" \\21C5";color:#999;font-size:.8em}
table.sortable th.asc:after{content:" \\25B2";color:#333}
table.sortable th.desc:after{content:" \\25BC";color:#333}
figure{margin:1.2em 0 2em;padding:.6em;border:1px solid #e3e3e6;border-radius:6px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:.9em;margin-top:.5em}figcaption b{display:block}
.nocaption{color:#a40000;font-weight:bold}
.note{color:#a40000}
.grid{display:flex;flex-wrap:wrap;gap:1.5em}.grid>div{flex:0 1 auto}
code,pre{background:#f6f6f8;border-radius:3px}pre{padding:.6em;overflow:auto;font-size:.85em}
"""

# Click a header to sort by that column (numbers numerically, text alphabetically); click again
# to reverse. Empty cells go last either way.
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function(table){
  table.querySelectorAll("th").forEach(function(th, col){
    th.addEventListener("click", function(){
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = !th.classList.contains("asc");
      table.querySelectorAll("th").forEach(function(h){h.classList.remove("asc","desc");});
      th.classList.add(asc ? "asc" : "desc");
      function key(row){
        var cell = row.cells[col]; if(!cell) return null;
        var text = (cell.getAttribute("data-sort") || cell.textContent).trim();
        if(text === "") return null;
        var num = Number(text); return isNaN(num) ? text.toLowerCase() : num;
      }
      rows.sort(function(a, b){
        var x = key(a), y = key(b);
        if(x === null || y === null) return (x === null) - (y === null);
        if(typeof x !== typeof y){ x = String(x); y = String(y); }
        var c = x < y ? -1 : x > y ? 1 : 0; return asc ? c : -c;
      });
      rows.forEach(function(row){ body.appendChild(row); });
    });
  });
});
"""


class Link(NamedTuple):
    """A table cell that links to ``href`` (relative to the page)."""

    text: str
    href: str


def esc(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """A table cell's text: 4 significant digits for floats, '' for None, compact lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    sortable: bool = False,
    key_columns: int = 1,
) -> str:
    """An HTML table; the first ``key_columns`` columns are left-aligned labels.

    A :class:`Link` cell becomes a link; float cells carry their exact value
    in ``data-sort`` so that sorting does not depend on the displayed rounding.
    """
    cls = ' class="sortable"' if sortable else ""
    head = "".join(f"<th{_k(i, key_columns)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            if isinstance(value, Link):
                cells.append(
                    f'<td{_k(i, key_columns)}><a href="{esc(value.href)}">'
                    f"{esc(value.text)}</a></td>"
                )
            else:
                sort = (
                    f' data-sort="{value!r}"'
                    if isinstance(value, float) and math.isfinite(value)
                    else ""
                )
                cells.append(f"<td{_k(i, key_columns)}{sort}>{esc(fmt(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table{cls}><thead><tr>{head}</tr></thead><tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table>"
    )


def _k(index: int, key_columns: int) -> str:
    return ' class="k"' if index < key_columns else ""


def png_data_uri(path: Path) -> str:
    """``data:`` URI of an image file (type from its suffix)."""
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def figure_data_uri(figure: Figure, dpi: int = 100) -> str:
    """``data:`` URI of a matplotlib figure rendered to PNG in memory."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_block(uri: str, stem: str, caption, *, anchor: str | None = None) -> str:
    """A ``<figure>`` with the image and its two-line caption, or a visible "no caption" note."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    if caption is None:
        text = (
            f'<span class="nocaption">No caption for figure "{esc(stem)}"</span> '
            "(add one to <code>analysis.report.captions</code>)."
        )
    else:
        text = f"<b>{esc(caption.title)}</b>{esc(caption.what)}<br>{esc(caption.how)}"
    return (
        f'<figure{ident}><img src="{uri}" alt="{esc(stem)}">'
        f'<figcaption>{text}<br><span class="sub">{esc(stem)}</span></figcaption></figure>'
    )


def page(
    title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str, *, script: bool = False
) -> str:
    """A complete HTML document; ``nav`` holds ``(anchor, label)`` pairs."""
    links = "\n".join(f'<a href="#{esc(a)}">{esc(label)}</a>' for a, label in nav)
    js = f"<script>{_SORT_SCRIPT}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head>\n<body><main>"
        f'<h1>{esc(title)}</h1><p class="sub">{subtitle}</p>'
        f"<nav>{links}</nav>\n{body}\n</main>{js}</body></html>\n"
    )
