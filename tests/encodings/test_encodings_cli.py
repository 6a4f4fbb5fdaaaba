"""`afpe encodings list|plot` as a user runs them: the page is self-contained and renders in Chromium."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

AFPE = [sys.executable, "-m", "afpe.service"]


def afpe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*AFPE, *args], capture_output=True, text=True, timeout=120)


def figure_data(page: str) -> list[dict]:
    """The traces Plotly.newPlot receives in a page written by plotly's write_html."""
    match = re.search(r"Plotly\.newPlot\(\s*\"[\w-]+\",\s*(\[.*?\]),\s*\{", page, re.S)
    assert match, "no Plotly.newPlot call in the page"
    return json.loads(match.group(1))


def array(value: list | dict) -> np.ndarray:
    """A trace array as Plotly writes it: a plain list or a base64 typed array {bdata, dtype, shape}."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value)


def test_version_and_help() -> None:
    assert afpe("--version").stdout.startswith("afpe-sweep ")
    assert "encodings" in afpe("--help").stdout


def test_list_prints_the_registry() -> None:
    assert afpe("encodings", "list").stdout.split() == [
        "none",
        "learnable",
        "sincos",
        "fourier",
        "afpe",
        "lfpe",
        "lsfpe",
    ]


def test_plot_writes_a_self_contained_page_that_renders(tmp_path: Path, render_dom) -> None:
    out = tmp_path / "afpe.html"
    result = afpe(
        "encodings",
        "plot",
        "--encoding",
        "afpe",
        "--grid",
        "14,14",
        "--scales",
        "1,0.25",
        "--seed",
        "0",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert '<script src="http' not in page  # no CDN: plotly.js is inline
    traces = figure_data(page)
    assert [t["type"] for t in traces] == ["heatmap"] * 3
    assert {"afpe, scales 1, 0.25", "fourier, scale 1", "sincos, scale 1"} <= set(re.findall(r'"text":"([^"]+)"', page))
    z = array(traces[0]["z"])
    assert z.shape == (14, 14) and z[7, 7] == pytest.approx(1.0)
    # rows decay faster than cols (scale 1 vs 0.25): the map is elongated along cols
    assert z[7, 12] > z[12, 7]

    dom = render_dom(out.as_uri())
    assert dom.count('class="main-svg"') >= 2, "Plotly did not draw the figure"
    assert dom.count('class="hm"') == 3, "the three heatmaps were not drawn"
    assert dom.count('xlink:href="data:image/png;base64,') >= 3


@pytest.mark.parametrize("grid, scales, n_traces", [("8,10,12", "2,1,0.5", 3), ("32", None, 1)])
def test_plot_handles_volumes_and_sequences(tmp_path: Path, grid: str, scales: str | None, n_traces: int) -> None:
    out = tmp_path / "page.html"
    extra = ["--scales", scales] if scales else []
    assert afpe("encodings", "plot", "--grid", grid, *extra, "--out", str(out)).returncode == 0
    assert len(figure_data(out.read_text())) == n_traces


@pytest.mark.parametrize(
    "args, message",
    [
        (["--encoding", "nope"], "valid encodings"),
        (["--scales", "1"], "one value per grid axis"),
        (["--grid", "14,x"], "comma-separated list of ints"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path: Path, args: list[str], message: str) -> None:
    base = {"--encoding": "afpe", "--grid": "14,14", "--out": str(tmp_path / "x.html")}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    result = afpe("encodings", "plot", *[item for pair in base.items() for item in pair])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
