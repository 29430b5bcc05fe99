"""The report's figures: inline SVG drawn from the summary, each a well-formed drawing whose
marks carry their numbers in hover text; the same whatever the number of samples."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from bench.report import build

RECORDED = Path(__file__).resolve().parent.parent / "reports" / "20261203-113710-quick-18c4"
SVG = "{http://www.w3.org/2000/svg}"


def figures_of(context):
    yield from context["first"]["figures"]
    for wl in context["workloads"]:
        yield from wl["figures"]
    yield from (context["instances"] or {}).get("figures", [])


def test_every_figure_is_a_well_formed_drawing_with_its_numbers_on_hover():
    context = build([RECORDED])
    figures = list(figures_of(context))
    assert len(figures) >= 5 and context["first"]["figures"], "the overview and the workloads' figures"
    for f in figures:
        svg = ET.fromstring(str(f["svg"]))   # well-formed: every label escaped
        assert svg.tag == f"{SVG}svg" and float(svg.get("width")) > 300
        marks = svg.findall(f".//{SVG}rect") + svg.findall(f".//{SVG}path") + svg.findall(f".//{SVG}circle")
        assert len(marks) > 5
        tips = [t.text for t in svg.iter(f"{SVG}title")]
        assert len(tips) > 2 and all(tips), f["caption"]   # the figure's title, then each mark's numbers
        assert "nan" not in " ".join(tips).lower()
    overview = ET.fromstring(str(context["first"]["figures"][0]["svg"]))
    bars = [t.text for t in overview.iter(f"{SVG}title") if "of native" in (t.text or "")]
    # one bar per environment and headline cell set against native, with its verdict in words
    assert bars and all(any(v in b for v in ("cost", "gain", "equivalent", "unresolved")) for b in bars)
