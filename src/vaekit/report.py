"""The report: ``results.json`` + figures -> one self-contained HTML page.

A report directory holds::

    results.json          everything measured (the only input of a rebuild)
    figures/<name>.png    every figure, also embedded in the page
    report.html           one page; figures are base64 data URIs, no external CSS, JS or fonts

``results`` is a JSON-able dict. Four keys are laid out specially, in this order:

- ``"title"``: the page title (default "vaekit report");
- ``"summary"``: the table shown first, a list of dicts with the same keys (or one dict);
- ``"comparison"``: ``{"rows": [dict, ...], "protocol": dict | str, ...}``; rows are grouped into
  one table per ``"task"`` when they have that key, and the protocol is shown beside them (its
  ``"note"``, if any, also at the top of the page, above the summary);
- ``"figures"``: ``{name: caption}`` or ``{name: {"caption": str, "section": str}}``; written by
  :func:`write_report`, which also records the figure order there so a rebuild is identical.

Every other key goes to a "Details" section. Figures are placed by ``section`` when given, else
by name: loss / KL curves under "Training", latent scatters under "Latent space", reconstructions
and samples under "Reconstructions and samples", the rest under "Other figures".

Every string from the caller (names, labels, keys, values) is HTML-escaped, and the page carries
a Content-Security-Policy that forbids scripts and any network access, as a second line of
defence.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import struct
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from . import __version__
from .errors import ConfigError, DataError, ModelFileError
from .persistence import RESULTS_FILE, atomic_write_bytes, atomic_write_json, read_json_object
from .plots import PNG_SIGNATURE, figure_to_png

__all__ = ["rebuild_report", "render_html", "write_report"]

REPORT_FILE, FIGURES_DIR = "report.html", "figures"
DEFAULT_TITLE = "vaekit report"
_LAYOUT_KEYS = ("title", "summary", "comparison", "figures")
# (key, heading, name fragments that place a figure there), first match wins.
_SECTIONS = (
    ("training", "Training", ("loss", "kl", "train", "history", "beta")),
    ("latent", "Latent space", ("latent", "scatter", "tsne", "umap", "embed")),
    ("samples", "Reconstructions and samples", ("recon", "sample", "generat", "interp", "grid")),
    ("other", "Other figures", ()),
)
_MAX_LIST = 200  # longer lists are cut in the page (results.json keeps them whole)
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'"
)
_CSS = """
:root{--fg:#1d2330;--muted:#5d6678;--line:#dde2ea;--alt:#f4f6fa;--accent:#2f6fdf}
*{box-sizing:border-box}
body{margin:0;background:#eef1f5;color:var(--fg);
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 32px 56px;background:#fff;min-height:100vh}
h1{font-size:1.8em;margin:0 0 .2em}
h2{font-size:1.3em;margin:2.2em 0 .6em;padding-bottom:.25em;border-bottom:2px solid var(--line)}
h3{font-size:1.05em;margin:1.4em 0 .4em}
nav{margin:.4em 0 1.2em;font-size:.92em}
nav a{color:var(--accent);text-decoration:none;margin-right:1.1em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.3em 0 1em;font-size:.9em}
th,td{padding:.36em .75em;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--alt);font-weight:600;border-bottom:2px solid var(--line)}
tbody tr:nth-child(even){background:#fafbfd}
tbody th{font-weight:600;background:transparent;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.list{max-width:60em;overflow-wrap:anywhere}
.pair{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.pair>.scroll{flex:1 1 560px}
aside.protocol{flex:0 1 360px;background:var(--alt);border:1px solid var(--line);
 border-radius:6px;padding:.5em 1em;font-size:.88em}
aside.protocol h3{margin-top:.4em}
aside.protocol table{font-size:1em}
.text{white-space:pre-wrap}
.figs{display:flex;flex-wrap:wrap;gap:20px;align-items:flex-start}
figure{margin:0;padding:10px;max-width:100%;border:1px solid var(--line);border-radius:6px}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{margin-top:.4em;color:var(--muted);font-size:.88em;text-align:center}
footer{margin-top:3em;color:var(--muted);font-size:.85em}
p.note{background:#fff6df;border:1px solid #e8c860;border-radius:6px;padding:.6em 1em}
"""


# --------------------------------------------------------------------------------------------
# Values -> escaped HTML
# --------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """A scalar as text: 4 significant digits for floats, integers as they are."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0.0:
            return "0"
        if not math.isfinite(value):
            return str(value)  # nan, inf, -inf
        if 1e-3 <= abs(value) < 1e4:
            return f"{value:#.4g}".rstrip(".")  # keeps trailing zeros: 0.9700, 1.000
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.3e}"
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any, depth: int) -> str:
    if _is_number(value):
        return f'<td class="num">{_e(_fmt(value))}</td>'
    if isinstance(value, list) and all(_is_scalar(v) for v in value):
        return f'<td class="list">{_scalar_list(value)}</td>'
    if _is_scalar(value):
        return f"<td>{_e(_fmt(value))}</td>"
    return f"<td>{_value(value, depth + 1)}</td>"


def _scalar_list(values: list) -> str:
    shown = ", ".join(_fmt(v) for v in values[:_MAX_LIST])
    if len(values) > _MAX_LIST:
        shown += f", … ({len(values)} values; all in {RESULTS_FILE})"
    return _e(f"[{shown}]")


def _rows_table(rows: list[Mapping], depth: int = 0) -> str:
    """A list of dicts as one table; columns in order of first appearance."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    numeric = {c for c in columns if all(_is_number(r.get(c)) for r in rows if c in r)}
    head = "".join(
        f'<th class="num">{_e(c)}</th>' if c in numeric else f"<th>{_e(c)}</th>" for c in columns
    )
    body = "".join(
        "<tr>" + "".join(_cell(row.get(c, ""), depth) for c in columns) + "</tr>" for row in rows
    )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _kv_table(mapping: Mapping, depth: int = 0) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th>{_cell(v, depth)}</tr>" for k, v in mapping.items())
    return f'<div class="scroll"><table><tbody>{body}</tbody></table></div>'


def _value(value: Any, depth: int = 0) -> str:
    """Any JSON value as readable HTML: tables for dicts and lists of dicts."""
    if depth > 4:  # deeper nesting is shown as JSON text rather than tables in tables
        return f'<span class="text">{_e(json.dumps(value, indent=1, default=str))}</span>'
    if isinstance(value, Mapping):
        return _kv_table(value, depth) if value else "<p>(empty)</p>"
    if isinstance(value, list):
        if value and all(isinstance(v, Mapping) for v in value):
            return _rows_table(value, depth)
        if all(_is_scalar(v) for v in value):
            return f'<p class="text">{_scalar_list(value)}</p>'
        return "".join(_value(v, depth + 1) for v in value)
    if isinstance(value, str):
        return f'<p class="text">{_e(value)}</p>'
    return f"<p>{_e(_fmt(value))}</p>"


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _png_size(data: bytes, name: str) -> tuple[int, int]:
    if not isinstance(data, bytes | bytearray) or not data.startswith(PNG_SIGNATURE):
        raise DataError(f"Figure {name!r} is not a PNG image; pass a Figure or PNG bytes.")
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise DataError(f"Figure {name!r} is a truncated PNG file.")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _figure_meta(results: Mapping, name: str) -> dict[str, str]:
    meta = results.get("figures")
    entry = meta.get(name) if isinstance(meta, Mapping) else None
    if isinstance(entry, str):
        return {"caption": entry}
    if isinstance(entry, Mapping):
        return {k: str(entry[k]) for k in ("caption", "section") if entry.get(k) is not None}
    return {}


def _section_of(name: str, meta: Mapping[str, str]) -> str:
    keys = [key for key, _, _ in _SECTIONS]
    if meta.get("section") in keys:
        return meta["section"]
    lowered = name.lower()
    for key, _, fragments in _SECTIONS:
        if any(fragment in lowered for fragment in fragments):
            return key
    return "other"


def _figure_html(name: str, data: bytes, meta: Mapping[str, str]) -> str:
    width, height = _png_size(data, name)
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    caption = meta.get("caption") or name
    return (
        f'<figure id="fig-{_e(_safe_name(name))}">'
        f'<img src="{src}" alt="{_e(caption)}" width="{width}" height="{height}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _comparison_html(comparison: Any) -> str:
    if isinstance(comparison, list):
        comparison = {"rows": comparison}
    if not isinstance(comparison, Mapping):
        return _value(comparison)
    rows = comparison.get("rows")
    tables = ""
    if isinstance(rows, list) and rows and all(isinstance(r, Mapping) for r in rows):
        if all("task" in r for r in rows):  # one table per task, in order of appearance
            for task in dict.fromkeys(str(r["task"]) for r in rows):
                task_rows = [
                    {k: v for k, v in r.items() if k != "task"}
                    for r in rows
                    if str(r["task"]) == task
                ]
                tables += f"<h3>{_e(task)}</h3>{_rows_table(task_rows)}"
        else:
            tables = _rows_table(rows)
    elif rows is not None:
        tables = _value(rows)
    protocol = comparison.get("protocol")
    aside = (
        f'<aside class="protocol"><h3>Protocol</h3>{_value(protocol)}</aside>'
        if protocol is not None
        else ""
    )
    rest = {k: v for k, v in comparison.items() if k not in ("rows", "protocol")}
    return f'<div class="pair"><div class="scroll">{tables}</div>{aside}</div>' + (
        _value(rest) if rest else ""
    )


def render_html(
    results: Mapping[str, Any],
    images: Mapping[str, bytes],
    *,
    title: str | None = None,
) -> str:
    """Render the report page.

    Parameters
    ----------
    results : dict
        JSON-like results; see the module docstring for the keys with a special place.
    images : dict of str -> bytes
        PNG files by figure name, in display order.
    title : str, optional
        Page title; default ``results["title"]``, else "vaekit report".

    Returns
    -------
    str
        A complete HTML document with every figure embedded as a ``data:image/png`` URI and every
        caller-supplied string escaped.
    """
    if not isinstance(results, Mapping):
        raise DataError(f"results must be a dict; got {type(results).__name__}.")
    results = _jsonable(results, strict=False)  # numpy scalars and arrays read as numbers
    title = str(title if title is not None else results.get("title") or DEFAULT_TITLE)
    sections: list[tuple[str, str, str]] = []  # (anchor, heading, html)
    # A note on the comparison (its test rows were training rows) is read before its numbers.
    comparison = results.get("comparison")
    protocol = comparison.get("protocol") if isinstance(comparison, Mapping) else None
    note = protocol.get("note") if isinstance(protocol, Mapping) else None
    callout = f'<p class="note"><strong>Note:</strong> {_e(note)}</p>' if note else ""
    if "summary" in results:
        sections.append(("summary", "Summary", callout + _value(results["summary"])))
    elif callout:
        sections.append(("note", "Note", callout))
    if "comparison" in results:
        sections.append(("comparison", "Comparison", _comparison_html(results["comparison"])))
    placed: dict[str, list[str]] = {key: [] for key, _, _ in _SECTIONS}
    for name, data in images.items():
        meta = _figure_meta(results, name)
        placed[_section_of(name, meta)].append(_figure_html(name, data, meta))
    for key, heading, _ in _SECTIONS:
        if placed[key]:
            sections.append((key, heading, f'<div class="figs">{"".join(placed[key])}</div>'))
    details = {k: v for k, v in results.items() if k not in _LAYOUT_KEYS}
    if details:
        body = "".join(f"<h3>{_e(k)}</h3>{_value(v)}" for k, v in details.items())
        sections.append(("details", "Details", body))

    nav = "".join(f'<a href="#{anchor}">{_e(heading)}</a>' for anchor, heading, _ in sections)
    content = "".join(
        f'<section id="{anchor}"><h2>{_e(heading)}</h2>{body}</section>'
        for anchor, heading, body in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><main><header><h1>{_e(title)}</h1><nav>{nav}</nav></header>\n"
        f"{content}\n"
        f"<footer>Made by vaekit {_e(__version__)}. Rebuild with <code>vaekit report DIR</code>"
        f" from {RESULTS_FILE} and {FIGURES_DIR}/.</footer></main></body></html>\n"
    )


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    """A figure name usable as a file stem: letters, digits, '.', '_' and '-' only."""
    # Cut, then strip again: a cut may end the name in '_', which rebuild_report would refuse.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._-")[:100].rstrip("._-")
    return safe or "figure"


def _jsonable(obj: Any, strict: bool = True) -> Any:
    """numpy scalars and arrays, tuples, sets and paths as plain JSON values; keys as str.

    Anything else is an error when ``strict`` (it could not be saved), else shown as ``str``.
    """
    if isinstance(obj, Mapping):
        out = {str(k): _jsonable(v, strict) for k, v in obj.items()}
        if len(out) < len(obj) and strict:  # e.g. 1 and "1": one would silently vanish
            clash = next(k for k, count in Counter(map(str, obj)).items() if count > 1)
            raise DataError(
                f"results has two keys that both read {clash!r} as text; JSON keys are "
                "strings, so rename one of them."
            )
        return out
    if isinstance(obj, list | tuple):
        return [_jsonable(v, strict) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted((_jsonable(v, strict) for v in obj), key=str)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist(), strict)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if not strict:
        return str(obj)
    raise DataError(
        f"results holds a {type(obj).__name__}, which cannot be saved as JSON; convert it to "
        "numbers, strings, lists or dicts."
    )


def write_report(
    out_dir: str | Path,
    results: Mapping[str, Any],
    figures: Mapping[str, Figure | bytes],
    *,
    dpi: int = 100,
) -> Path:
    """Write ``results.json``, ``figures/<name>.png`` and ``report.html`` into ``out_dir``.

    Everything is rendered in memory first, so a bad figure or value fails before any file is
    touched; each file is then written to a temporary name and renamed (report.html last).

    Parameters
    ----------
    out_dir : str or Path
        Created if needed.
    results : dict
        JSON-able results (numpy scalars and arrays are converted); see the module docstring.
    figures : dict of str -> Figure or bytes
        Figures (rendered at ``dpi``) or PNG bytes, in display order. Names are reduced to
        ``[A-Za-z0-9._-]`` for file names (clashes get ``-2``, ``-3``...); captions come from
        ``results["figures"]`` under the original name, else the name itself.
    dpi : int
        Resolution of rendered figures.

    Returns
    -------
    Path
        The path of ``report.html``.
    """
    if not isinstance(results, Mapping):
        raise DataError(f"results must be a dict; got {type(results).__name__}.")
    given_meta = results.get("figures", {})
    if not isinstance(given_meta, Mapping):
        raise ConfigError(
            "results['figures'] is reserved for figure captions: a dict of name -> caption."
        )
    pngs: dict[str, bytes] = {}
    meta: dict[str, Any] = {}
    for name, fig in figures.items():
        base, k = _safe_name(name), 2
        safe = base
        while safe in pngs:  # names that clash once made safe get -2, -3, ... (100 chars in all)
            suffix = f"-{k}"
            safe, k = base[: 100 - len(suffix)].rstrip("._-") + suffix, k + 1
        data = figure_to_png(fig, dpi=dpi) if isinstance(fig, Figure) else fig
        _png_size(data, str(name))
        pngs[safe] = bytes(data)
        entry = given_meta.get(name, given_meta.get(safe))
        if entry is None or isinstance(entry, Mapping):
            entry = dict(entry or {})
        else:
            entry = {"caption": str(entry)}
        meta[safe] = {"file": f"{FIGURES_DIR}/{safe}.png", **entry}
    saved = dict(results)
    saved["figures"] = meta
    # Render from exactly what results.json will hold, so a rebuild gives the same page.
    saved = json.loads(json.dumps(_jsonable(saved), allow_nan=True))
    page = render_html(saved, pngs).encode("utf-8")

    directory = Path(out_dir)
    stale = _listed_figures(directory) - set(pngs)
    try:
        (directory / FIGURES_DIR).mkdir(parents=True, exist_ok=True)
        for safe, data in pngs.items():
            atomic_write_bytes(directory / FIGURES_DIR / f"{safe}.png", data)
        atomic_write_json(directory / RESULTS_FILE, saved)
        atomic_write_bytes(directory / REPORT_FILE, page)
        # A report written over another (visualize with another --method) leaves none of the
        # earlier one's figures behind; files it did not list are not ours to remove.
        for name in stale:
            (directory / FIGURES_DIR / f"{name}.png").unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"Cannot write the report to {directory}: {exc.strerror or exc}; choose another --out."
        ) from None
    return directory / REPORT_FILE


def _listed_figures(directory: Path) -> set[str]:
    """The figure names the ``results.json`` already in ``directory`` lists (none if unreadable)."""
    try:
        listed = json.loads((directory / RESULTS_FILE).read_text(encoding="utf-8"))["figures"]
    except (OSError, ValueError, TypeError, KeyError):
        return set()
    if not isinstance(listed, Mapping):
        return set()
    return {name for name in listed if isinstance(name, str) and _safe_name(name) == name}


def rebuild_report(out_dir: str | Path) -> Path:
    """Re-render ``report.html`` from the saved ``results.json`` and ``figures/*.png``.

    Nothing is retrained or recomputed. Figures are those listed in ``results["figures"]`` (in
    that order) when present, else every ``figures/*.png`` by name.

    Parameters
    ----------
    out_dir : str or Path
        A directory written by :func:`write_report`.

    Returns
    -------
    Path
        The path of ``report.html``.
    """
    directory = Path(out_dir)
    results_path = directory / RESULTS_FILE
    if not results_path.is_file():
        raise ModelFileError(
            f"{directory} has no {RESULTS_FILE}, so there is no report to rebuild; run "
            "`vaekit evaluate` or `vaekit demo` with --out first."
        )
    results = read_json_object(
        results_path, "a results object (a JSON dict)", "re-run to recreate it"
    )
    listed = results.get("figures")
    if isinstance(listed, dict):
        names = list(listed)
    else:
        names = sorted(p.stem for p in (directory / FIGURES_DIR).glob("*.png"))
    images: dict[str, bytes] = {}
    for name in names:
        if _safe_name(name) != name:
            raise ModelFileError(f"{results_path} lists an invalid figure name {name!r}.")
        path = directory / FIGURES_DIR / f"{name}.png"
        try:
            images[name] = path.read_bytes()
        except OSError:
            raise ModelFileError(
                f"{results_path} lists figure {name!r} but {path} is missing; re-run to "
                "recreate the figures, or remove the entry."
            ) from None
        try:
            _png_size(images[name], name)
        except DataError:
            raise ModelFileError(
                f"{path} is not a valid PNG file; re-run to recreate the figures."
            ) from None
    page = render_html(results, images)
    report_path = directory / REPORT_FILE
    try:
        atomic_write_bytes(report_path, page.encode("utf-8"))
    except OSError as exc:
        raise ModelFileError(f"Cannot write {report_path}: {exc.strerror or exc}.") from None
    return report_path
