"""Writing a run's results: `results.json` (the data), the figures, `report.md` from a Jinja2
template (`templates/report.md.j2`), `report.html` (that markdown rendered by markdown-it-py,
figures inlined, readable at 1280 px: wide tables and code scroll inside their own box) and the
TensorBoard view. Nothing is computed here that is not in `Results`."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt

from reasonlab.io import write_json_atomic, write_text_atomic
from reasonlab.pipeline import plots
from reasonlab.pipeline.claims import pts
from reasonlab.pipeline.results import Results

STYLE = ("body{font-family:system-ui,sans-serif;max-width:1120px;margin:2em auto;padding:0 1em;line-height:1.45}"
         ".wide{overflow-x:auto}table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
         "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
         "img{max-width:100%;height:auto;display:block;margin:.8em 0}"
         "pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:12px;white-space:pre-wrap}"
         "blockquote{border-left:3px solid #bbb;margin:.5em 0;padding-left:.8em;color:#333}")


FIGURES = ("claims", "scaling", "grpo", "compute")


def write_report(results: Results, out: Path) -> Path:
    """results.json, the figures, report.md, report.html and TensorBoard's copy; the report's path."""
    (out / "plots").mkdir(parents=True, exist_ok=True)
    figures = {k: v for k, v in {
        "claims": plots.claims_forest(results.claims, out / "plots" / "claims.png"),
        "scaling": plots.accuracy_vs_tokens(results.scale_files, out / "plots" / "accuracy_vs_tokens.png"),
        "grpo": plots.grpo_curves(results.grpo_metrics, out / "plots" / "grpo_curves.png"),
        "compute": plots.accuracy_vs_compute(results.rows, out / "plots" / "accuracy_vs_compute.png"),
    }.items() if v}
    write_json_atomic(out / "results.json", results.to_json())
    md = markdown(results, out.name, {k: str(p.relative_to(out)) for k, p in figures.items()})
    write_text_atomic(out / "report.md", md)
    write_text_atomic(out / "report.html", html_page(md, out))
    plots.tensorboard(out, results.rows, results.scale_files, md)
    return out / "report.md"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _with_ci(row, key: str) -> str:
    ci = getattr(row, f"{key}_ci95")
    return _pct(getattr(row, key)) + ("" if not ci else f" [{_pct(ci[0])}, {_pct(ci[1])}]")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.filters.update(pct=_pct, with_ci=_with_ci, pts=pts)
    return env


def markdown(results: Results, name: str, figures: dict[str, str] | None = None) -> str:
    """The report's markdown."""
    shows = results.examples
    return _environment().get_template("report.md.j2").render(
        name=name, e=results.eval, cpu=results.cpu, claims=results.claims, rows=results.rows,
        findings=results.findings, figures={k: (figures or {}).get(k) for k in FIGURES}, same=shows.get("same_problem"),
        fix=shows.get("self_correction")).rstrip("\n") + "\n"


def html_page(md: str, out: Path) -> str:
    """`md` as one self-contained page: figures inlined as base64 (a missing one says so), tables
    in a box that scrolls sideways."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    rules = parser.renderer.rules
    rules["table_open"] = lambda *a: "<div class='wide'><table>\n"
    rules["table_close"] = lambda *a: "</table></div>\n"
    rules["image"] = lambda tokens, i, *a: _image(tokens[i].content, tokens[i].attrGet("src") or "", out)
    body = parser.render(md)
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{html.escape(out.name)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n")


def _image(alt: str, src: str, out: Path) -> str:
    path = out / src
    if not path.exists():
        return f"(figure missing: {html.escape(src)})"
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"
