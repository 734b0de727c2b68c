"""HTML of the report: one self-contained page, figures embedded as ``data:image/png`` URIs.

Nothing is loaded from elsewhere: the style sheet and the one script are inline. The script
checks, once the page has loaded, that every image decoded (``complete`` and a non-zero
``naturalWidth``) and writes the count into ``<div id="image-check" data-total data-ok>``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from hashlearn.experiments.results import TIMING_KEYS
from hashlearn.report.results import MetricTable

__all__ = [
    "data_uri",
    "definition_list",
    "facts_table",
    "figure_block",
    "header_section",
    "metric_table_html",
    "note",
    "page",
    "section",
    "simple_table",
]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
       padding: 0 1em; line-height: 1.4; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.code { font-family: ui-monospace, monospace; text-align: left; }
table.facts th { text-align: left; font-weight: 600; background: #f6f6f6; }
table.facts td { text-align: left; }
div.tables { display: flex; flex-wrap: wrap; column-gap: 2.5em; align-items: flex-start; }
caption { text-align: left; font-weight: bold; padding: 0.3em 0; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
dl.defs dt { font-weight: bold; margin-top: 0.4em; }
dl.defs dd { margin-left: 1.5em; }
p.note { background: #fff8e0; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }
#image-check { color: #555; font-size: 0.85em; margin-top: 3em; }
"""

IMAGE_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (img) { return img.complete && img.naturalWidth > 0; });
  var box = document.getElementById("image-check");
  box.setAttribute("data-total", String(images.length));
  box.setAttribute("data-ok", String(ok.length));
  box.setAttribute("data-status", "checked");
  box.textContent = ok.length + " of " + images.length + " figures displayed";
});
"""


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def page(title: str, sections: Sequence[str], n_images: int) -> str:
    """The complete HTML document: inline style, the sections, the image check."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{escape(title)}</h1>",
            *sections,
            f'<div id="image-check" data-total="{n_images}" data-ok="0" data-status="pending">'
            "figure check pending (needs JavaScript)</div>",
            f"<script>{IMAGE_CHECK_SCRIPT}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def section(heading: str, *parts: str, anchor: str = "") -> str:
    """A ``<section>`` with an ``<h2>`` heading and the given HTML parts."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return "\n".join([f"<section{ident}>", f"<h2>{escape(heading)}</h2>", *parts, "</section>"])


def note(text: str) -> str:
    """A highlighted paragraph (for what the report had to leave out)."""
    return f'<p class="note">{escape(text)}</p>'


def figure_block(png: bytes, alt: str, caption: str, file_name: str) -> str:
    """An embedded PNG figure with its caption and the name of its copy on disk."""
    return (
        f'<figure><img src="{data_uri(png)}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)} (also saved as <code>{escape(file_name)}</code>)"
        "</figcaption></figure>"
    )


def facts_table(items: Mapping[str, Any]) -> str:
    """Two-column table of names (header cells) and values, both left-aligned."""
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in items.items()
    )
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def definition_list(items: Mapping[str, Any]) -> str:
    """``<dl>`` of names and their texts."""
    rows = [f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>" for k, v in items.items()]
    return '<dl class="defs">' + "".join(rows) + "</dl>"


def simple_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], css: Sequence[str] = ()
) -> str:
    """A plain table; ``css`` gives a class per column (e.g. ``"code"``)."""
    classes = list(css) + [""] * (len(headers) - len(css))
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = [
        "<tr>"
        + "".join(
            f'<td class="{c}">{escape(str(v))}</td>' if c else f"<td>{escape(str(v))}</td>"
            for v, c in zip(row, classes)
        )
        + "</tr>"
        for row in rows
    ]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def metric_table_html(table: MetricTable, definition: str = "") -> str:
    """A methods x bits table of one metric; the best cell of each column in ``<strong>``.

    Retrieval metrics show 4 decimals, timings 4 significant digits; cells read ``mean ± std``
    when more than one seed was run.
    """
    timing = table.metric in TIMING_KEYS
    direction = "lower is better" if not table.higher_is_better else "higher is better"
    caption = f"{table.metric} ({direction})"
    head = "".join(
        [f"<th>{escape(table.metric)}</th>"] + [f"<th>{b} bits</th>" for b in table.bits]
    )
    body = []
    for method in table.methods:
        cells = [f"<th>{escape(method)}</th>"]
        for n_bits in table.bits:
            cell = table.cells.get((method, n_bits))
            if cell is None:
                cells.append("<td>-</td>")
                continue
            text = escape(cell.text(4, significant=timing))
            cells.append(f"<td><strong>{text}</strong></td>" if cell.best else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    title = f' title="{escape(definition)}"' if definition else ""
    return (
        f'<table class="metric" data-metric="{escape(table.metric)}"{title}>'
        f"<caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def header_section(document: Mapping[str, Any], generated: str) -> str:
    """Dataset, protocol, manifests, split sizes, versions, date, configuration and metric
    definitions of a results document."""
    protocol = document.get("protocol", {})
    rows = document["results"]
    datasets = list(dict.fromkeys([protocol.get("dataset")] + [r.get("dataset") for r in rows]))
    facts: dict[str, Any] = {
        "dataset": ", ".join(d for d in datasets if d) or "-",
        "protocol": protocol.get("name", "-"),
    }
    sizes = protocol.get("sizes")
    if isinstance(sizes, dict) and sizes:
        facts["split sizes"] = ", ".join(f"{k} {v}" for k, v in sizes.items())
    facts["manifest"] = _manifests(protocol, rows)
    seeds = sorted({int(r["seed"]) for r in rows})
    facts["seeds"] = ", ".join(map(str, seeds))
    facts["methods"] = ", ".join(dict.fromkeys(r["method"] for r in rows))
    facts["code lengths"] = ", ".join(f"{b} bits" for b in sorted({r["n_bits"] for r in rows}))
    versions = document.get("versions") or {}
    if versions:
        facts["versions"] = ", ".join(f"{k} {v}" for k, v in versions.items())
    total = (document.get("timings") or {}).get("total_s")
    if isinstance(total, (int, float)):
        facts["benchmark time"] = f"{total:.1f} s"
    facts["report generated"] = generated
    parts = [facts_table(facts)]
    if document.get("config"):
        config = escape(json.dumps(document["config"], indent=2, sort_keys=True))
        parts.append(
            f"<details><summary>benchmark configuration</summary><pre>{config}</pre></details>"
        )
    parts.append("<h3>Metric definitions</h3>")
    parts.append(definition_list(document.get("metrics", {})))
    return section("Benchmark", *parts, anchor="header")


def _manifests(protocol: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    manifest = protocol.get("manifest")
    listed: dict[str, str] = {}
    if isinstance(manifest, dict):
        listed = {str(seed): str(digest) for seed, digest in manifest.items()}
    elif isinstance(manifest, str):
        listed = {"all": manifest}
    for row in rows:
        digest = row.get("manifest")
        if digest and digest not in listed.values():
            listed[str(row["seed"])] = digest
    if not listed:
        return "-"
    return "; ".join(f"seed {seed}: {digest}" for seed, digest in listed.items())
