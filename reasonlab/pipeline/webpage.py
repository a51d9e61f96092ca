"""`report.html`: the report's markdown as one self-contained page (figures inlined as base64),
readable at 1280 px without horizontal scrolling: wide tables and code scroll inside their own
box, images shrink to the column."""

from __future__ import annotations

import base64
import html as esc
import re
from pathlib import Path

STYLE = ("body{font-family:system-ui,sans-serif;max-width:1120px;margin:2em auto;padding:0 1em;line-height:1.45}"
         ".wide{overflow-x:auto}table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
         "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
         "img{max-width:100%;height:auto;display:block;margin:.8em 0}"
         "pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:12px;white-space:pre-wrap}"
         "blockquote{border-left:3px solid #bbb;margin:.5em 0;padding-left:.8em;color:#333}")
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold**.

    >>> _inline("a **b** `c<d`")
    'a <b>b</b> <code>c&lt;d</code>'
    """
    out = esc.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def _image(alt: str, src: str, out: Path) -> str:
    path = out / src
    if not path.exists():
        return f"<p>(figure missing: {esc.escape(src)})</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{esc.escape(alt)}' src='data:image/png;base64,{data}'>"


def render(md: str, out: Path) -> str:
    """The page for `md` (the subset of markdown the report writes: headings, tables, lists,
    quotes, fenced code, images on their own line, paragraphs)."""
    parts: list[str] = []
    lines, i = md.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            parts.append("<pre>" + esc.escape("\n".join(lines[i + 1 : end])) + "</pre>")
            i = end + 1
            continue
        if line.startswith("|"):
            end = next((j for j in range(i, len(lines)) if not lines[j].startswith("|")), len(lines))
            parts.append(_table(lines[i:end]))
            i = end
            continue
        if line.startswith("- "):
            end = next((j for j in range(i, len(lines)) if not lines[j].startswith("- ")), len(lines))
            parts.append("<ul>" + "".join(f"<li>{_inline(x[2:])}</li>" for x in lines[i:end]) + "</ul>")
            i = end
            continue
        m = _IMAGE.match(line.strip())
        if m:
            parts.append(_image(m["alt"], m["src"], out))
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            parts.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("> "):
            parts.append(f"<blockquote>{_inline(line[2:])}</blockquote>")
        elif line.strip():
            parts.append(f"<p>{_inline(line)}</p>")
        i += 1
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{esc.escape(out.name)}</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def _table(rows: list[str]) -> str:
    body = []
    for k, line in enumerate(rows):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue
        tag = "th" if k == 0 else "td"
        body.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells) + "</tr>")
    return "<div class='wide'><table>" + "".join(body) + "</table></div>"
