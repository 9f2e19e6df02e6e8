"""report: escaping, layout, write -> rebuild round trip, clear errors, and a real browser."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from vaekit import plots
from vaekit.errors import DataError, ModelFileError
from vaekit.report import rebuild_report, render_html, write_report

from _helpers import needs_chromium, probe_in_chromium

EVIL = "<script>alert(1)</script>"
EVIL_ATTR = '" onerror="alert(2)'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


class _Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer would see them."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def named(self, name):
        return [attrs for tag, attrs in self.tags if tag == name]


def _history():
    return [
        {
            "epoch": i + 1,
            "train_loss": 5.0 - i,
            "train_recon": 4.0 - i,
            "train_kl": 1.0,
            "beta": 1.0,
            "val_loss": 5.2 - i,
            "val_recon": 4.1 - i,
            "val_kl": 1.1,
            "val_kl_per_dim": [0.9, 0.2, 0.0],
        }
        for i in range(4)
    ]


@pytest.fixture(scope="module")
def figures():
    rng = np.random.default_rng(0)
    return {
        "loss_curves": plots.loss_curves(_history()),
        "kl_per_dim": plots.kl_per_dimension([0.9, 0.2, 0.0]),
        f"latent {EVIL}": plots.latent_scatter(
            rng.normal(size=(30, 2)), np.arange(30) % 3, class_names=[EVIL, "b", "c"]
        ),
        "samples": plots.image_grid(rng.random((9, 8, 8)), title="samples"),
    }


@pytest.fixture(scope="module")
def pngs(figures):
    return {name: plots.figure_to_png(fig, dpi=40) for name, fig in figures.items()}


def _results():
    """Results with a hostile string in every place a user's string can reach."""
    return {
        "title": f"digits {EVIL}",
        "summary": [
            {"features": "raw", "accuracy": 0.9123456, "n_train": 1437},
            {"features": f"VAE μ(x) {EVIL}", "accuracy": np.float32(0.97), EVIL: EVIL_ATTR},
        ],
        "comparison": {
            "rows": [
                {"task": "classification", "features": "raw", "model": "logreg", "accuracy": 0.93},
                {"task": "classification", "features": "pca", "model": "logreg", "accuracy": 0.9},
                {"task": f"clustering {EVIL}", "features": "raw", "model": "kmeans", "nmi": 0.5},
            ],
            "protocol": {"split": "80/20 stratified", "seeds": [0, 1], EVIL: EVIL},
        },
        "dataset": {"name": EVIL, "file": f"/data/{EVIL}.csv", "columns": [EVIL, "b"]},
        EVIL: {EVIL_ATTR: EVIL},
        "figures": {f"latent {EVIL}": f"caption {EVIL}"},
    }


# -- render_html ------------------------------------------------------------------------------


def test_hostile_strings_are_escaped_everywhere(pngs):
    page = render_html(_results(), {**pngs, f"{EVIL_ATTR}{EVIL}": pngs["samples"]})
    assert "<script" not in page.lower()
    assert page.count(ESCAPED) >= 8
    tags = _Tags(page)
    assert not tags.named("script")
    for tag, attrs in tags.tags:  # no attribute was smuggled in through a quote
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    assert "&quot; onerror=&quot;alert(2)" in page


def test_every_img_is_an_embedded_png_and_nothing_is_fetched(pngs):
    page = render_html(_results(), pngs)
    imgs = _Tags(page).named("img")
    assert len(imgs) == len(pngs)
    assert all(img["src"].startswith("data:image/png;base64,") for img in imgs)
    assert all(int(img["width"]) > 0 and int(img["height"]) > 0 for img in imgs)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", page)
    assert not _Tags(page).named("link")


def test_layout_summary_first_then_comparison_figures_details(pngs):
    page = render_html(_results(), pngs)
    sections = [attrs["id"] for attrs in _Tags(page).named("section")]
    assert sections == ["summary", "comparison", "training", "latent", "samples", "details"]
    # Comparison rows are grouped by task, with the protocol beside them.
    assert "<h3>classification</h3>" in page and f"<h3>clustering {ESCAPED}</h3>" in page
    assert '<aside class="protocol">' in page and "80/20 stratified" in page
    # Numbers: right-aligned cells, 4 significant digits.
    assert '<td class="num">0.9123</td>' in page and '<td class="num">0.9700</td>' in page
    assert '<td class="num">1437</td>' in page
    assert f"caption {ESCAPED}" in page


def test_a_note_on_the_comparison_is_read_before_its_numbers():
    """evaluate's leakage note sat at the end of the protocol, below every number it taints."""
    note = "The model was trained on digits, which holds 450 of the test rows <scored here>."
    results = {
        "summary": [{"features": "vae_mu", "accuracy": 0.9}],
        "comparison": {"rows": [], "protocol": {"split": "75/25", "note": note}},
    }
    page = render_html(results, {})
    callout = '<p class="note"><strong>Note:</strong> The model was trained on digits'
    assert page.index(callout) < page.index("<th>features</th>")
    assert "&lt;scored here&gt;" in page


def test_summary_as_a_dict_and_no_figures():
    page = render_html({"summary": {"best": "VAE μ(x)", "accuracy": 0.5}}, {})
    assert "<img" not in page and "<th>best</th>" in page and "vaekit report" in page


def test_render_rejects_non_png_images():
    with pytest.raises(DataError, match="PNG"):
        render_html({}, {"fig": b"<svg onload=alert(1)>"})


# -- write_report / rebuild_report ------------------------------------------------------------


def test_write_then_rebuild_gives_the_same_page(tmp_path, figures):
    out = tmp_path / "run"
    report = write_report(out, _results(), figures, dpi=40)
    assert report == out / "report.html"
    first = report.read_text(encoding="utf-8")
    saved = json.loads((out / "results.json").read_text())
    assert saved["summary"][1]["accuracy"] == pytest.approx(0.97)  # numpy scalar saved as float
    names = list(saved["figures"])
    assert names[0] == "loss_curves" and len(names) == 4
    files = sorted(p.name for p in (out / "figures").iterdir())
    assert files == sorted(f"{n}.png" for n in names)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+\.png", f) for f in files)
    assert not list(out.rglob("*.tmp"))

    report.unlink()
    assert rebuild_report(out).read_text(encoding="utf-8") == first


def test_results_that_json_cannot_hold_are_refused_before_writing(tmp_path):
    # 1 and "1" would both become the key "1", and one of them would silently vanish.
    with pytest.raises(DataError, match="two keys that both read '1'"):
        write_report(tmp_path / "r", {"scores": {1: 0.5, "1": 0.7}}, {})
    with pytest.raises(DataError, match="holds a object, which cannot be saved as JSON"):
        write_report(tmp_path / "r", {"model": object()}, {})
    assert not (tmp_path / "r").exists()
    saved = write_report(tmp_path / "r", {"scores": {1: 0.5, 2: np.float32(0.25)}}, {})
    assert json.loads((saved.parent / "results.json").read_text())["scores"] == {
        "1": 0.5,
        "2": 0.25,
    }


def test_figure_names_cannot_escape_the_figures_folder(tmp_path, pngs):
    data = pngs["samples"]
    write_report(tmp_path / "r", {}, {"../../evil": data, "a/b": data, "a_b": data, "": data})
    written = sorted(p.name for p in (tmp_path / "r" / "figures").iterdir())
    assert written == ["a_b-2.png", "a_b.png", "evil.png", "figure.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_long_figure_names_survive_a_rebuild(tmp_path, pngs):
    """Cut to 100 characters, a name could end in '_' (or grow past 100 with its -2), which
    rebuild_report refused as an invalid name."""
    data = pngs["samples"]
    long = "x" + "ab_" * 40
    write_report(tmp_path / "r", {}, {long: data, long + "!": data})
    names = sorted(p.stem for p in (tmp_path / "r" / "figures").iterdir())
    assert all(len(n) <= 100 and not n.endswith("_") for n in names) and len(names) == 2
    rebuild_report(tmp_path / "r")


def test_rebuild_without_figure_list_uses_every_png(tmp_path, pngs):
    out = tmp_path / "r"
    write_report(out, {"summary": [{"a": 1}]}, {"b": pngs["samples"], "a": pngs["kl_per_dim"]})
    results = json.loads((out / "results.json").read_text())
    del results["figures"]
    (out / "results.json").write_text(json.dumps(results))
    page = rebuild_report(out).read_text()
    assert len(_Tags(page).named("img")) == 2


def test_a_report_written_over_another_leaves_none_of_its_figures(tmp_path, pngs):
    """visualize with another --method writes other scatter figures into the same folder."""
    out = tmp_path / "r"
    write_report(out, {}, {"scatter_tsne": pngs["samples"], "samples": pngs["samples"]})
    (out / "figures" / "mine.png").write_bytes(pngs["samples"])  # not the report's
    write_report(out, {}, {"scatter_umap": pngs["samples"], "samples": pngs["kl_per_dim"]})
    files = sorted(p.name for p in (out / "figures").iterdir())
    assert files == ["mine.png", "samples.png", "scatter_umap.png"]
    assert (out / "figures" / "samples.png").read_bytes() == pngs["kl_per_dim"]


def test_write_report_fails_before_touching_disk(tmp_path, pngs):
    out = tmp_path / "never"
    with pytest.raises(DataError, match="PNG"):
        write_report(out, {}, {"ok": pngs["samples"], "bad": b"GIF89a"})
    with pytest.raises(DataError, match="JSON"):
        write_report(out, {"model": object()}, {"ok": pngs["samples"]})
    assert not out.exists()


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda out: (out / "results.json").unlink(), "no results.json"),
        (lambda out: (out / "results.json").write_text('{"summary": [1,'), "not valid JSON"),
        (lambda out: (out / "results.json").write_text("[1, 2]"), "results object"),
        (lambda out: (out / "figures" / "samples.png").unlink(), "missing"),
        (lambda out: (out / "figures" / "samples.png").write_bytes(b"\x89PNG"), "PNG"),
    ],
)
def test_rebuild_of_a_damaged_directory_is_a_clear_error(tmp_path, pngs, damage, match):
    out = tmp_path / "r"
    write_report(out, {"summary": [{"a": 1.0}]}, {"samples": pngs["samples"]})
    damage(out)
    with pytest.raises(ModelFileError, match=match):
        rebuild_report(out)


def test_rebuild_of_a_missing_directory(tmp_path):
    with pytest.raises(ModelFileError, match=r"no results\.json"):
        rebuild_report(tmp_path / "nothing")


# -- a real browser ---------------------------------------------------------------------------


@needs_chromium
def test_report_renders_in_headless_chromium(tmp_path, figures):
    out = tmp_path / "run"
    page = write_report(out, _results(), figures, dpi=40).read_text(encoding="utf-8")
    check = probe_in_chromium(page, tmp_path)
    assert check["images"] == len(figures) and check["broken"] == [], check
    assert check["errors"] == [] and check["scripts"] == 1, check  # the probe's script only
    assert check["title"] == check["h1"] == f"digits {EVIL}"  # shown as text, not run
    assert check["summaryRows"] == 2
    assert check["sections"][:2] == ["summary", "comparison"]
