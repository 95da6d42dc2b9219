"""Presets: each published table row as data, runnable with one command, its numbers beside the measured ones."""

import re
from pathlib import Path

import pytest

from benchmark_layouts import make_flickr30k
from retrieval.datasets import DATASETS
from retrieval.errors import EvalInputError
from retrieval.evaluation.plan import plan_methods
from retrieval.evaluation.presets import Expected, compare, load_presets
from retrieval.rerank.names import FUSION_METHODS, RERANK_METHODS
from retrieval.settings import Settings

PRESETS = load_presets()
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_names_a_real_benchmark_methods_settings_and_the_rows_it_compares(name):
    preset = PRESETS[name]
    reader = DATASETS[preset.dataset]
    assert set(preset.rerank) <= set(RERANK_METHODS) and set(preset.fuse) <= set(FUSION_METHODS)
    Settings(**preset.settings)  # valid values, not only known names
    media = "video" if reader.task == "t2v" else "image"
    retrievers = [Path(s).stem for s in preset.sims] or (["clip", "clip-mean"] if media == "video" else ["clip"])
    reverse = {"t2i": "i2t", "t2v": "v2t"}.get(reader.task)
    rows = {(reader.task, m.name) for m in plan_methods(retrievers, ["none", *preset.rerank], list(preset.fuse),
                                                        forward=True, has_media=True, media=media,
                                                        composed=reader.task == "cir")}
    if reverse:
        rows |= {(reverse, m.name) for m in plan_methods(retrievers, ["none", *preset.rerank], list(preset.fuse),
                                                         forward=False, has_media=True, media=media)}
    assert preset.expected and all((e.direction, e.method) in rows for e in preset.expected), rows
    assert preset.source


def test_the_readme_lists_every_preset_with_its_published_numbers_not_run_here():
    table = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    for name, preset in PRESETS.items():
        (row,) = [line for line in table if f"--preset {name} " in line]
        for e in preset.expected:
            assert f"{e.metric} {e.value:g}" in row, (name, e)
        assert "not run here" in row


def test_a_malformed_preset_file_is_named(tmp_path):
    path = tmp_path / "presets.toml"
    path.write_text('[x]\ntitle = "t"\ndataset = "coco"\nsplit = "test"\nsource = "s"\n'
                    'settings = { rerank_depth = 3 }\nexpected = [{ direction = "t2i", method = "clip", '
                    'metric = "R@1", value = 1.0 }]\n')
    with pytest.raises(EvalInputError, match="preset 'x' sets unknown settings rerank_depth"):
        load_presets(path)
    path.write_text('[x]\ntitle = "t"\n')
    with pytest.raises(EvalInputError, match="preset 'x' is malformed"):
        load_presets(path)


def test_compare_puts_rates_in_percent_and_ranks_as_they_are():
    expected = (Expected("t2i", "clip", "R@1", 66.78), Expected("t2i", "clip", "MdR", 1.0),
                Expected("i2t", "clip", "R@1", 84.1))
    rows = compare(expected, {("t2i", "clip"): {"R@1": 0.5, "MdR": 2.0}, ("i2t", "clip"): {"R@1": float("nan")}})
    assert [r.measured for r in rows] == [50.0, 2.0, None]


def test_list_presets_names_each_with_its_numbers_and_source(run_cli):
    result = run_cli("eval", "--list-presets")
    assert result.code == 0, result.err
    out = " ".join(result.out.split())
    for name, preset in PRESETS.items():
        assert f"{name}: {preset.title}" in out
        assert f"run: gridrank eval --preset {name} --root DIR" in out
    assert "t2i clip R@1 66.78" in out


def test_a_preset_run_puts_the_published_numbers_beside_the_measured_ones(tmp_path, run_cli):
    out = tmp_path / "out"
    result = run_cli("eval", "--tiny", "--preset", "clip-flickr30k", "--root", str(make_flickr30k(tmp_path / "f")),
                     "--out", str(out))
    assert result.code == 0, result.err
    report = (out / "report.md").read_text()
    assert "## Published beside measured (preset clip-flickr30k)" in report
    assert re.search(r"\| t2i \| clip \| R@1 \| 66.78 \| \d+\.\d \|", report)
    assert "Published: open_clip docs/openclip_retrieval_results.csv" in report
    # The tiny profile is not the published model: the report says the numbers are not comparable.
    assert "not comparable: clip_model 'gridrank-tiny-clip' (published: 'ViT-B-32')" in report


@pytest.mark.parametrize("args, message", [
    (["--preset", "clip-flickr30k", "--rerank", "grid", "--root", "."], "sets the benchmark, methods and models "
                                                                       "itself: drop --rerank"),
    (["--preset", "clip-flickr30k"], "--preset clip-flickr30k needs --root"),
    (["--preset", "nope", "--root", "."], "unknown --preset 'nope': choose one of clip-flickr30k"),
    (["--preset", "cotrr-cirr-test", "--root", "."], "runs gemini-2.5-flash, which gridrank reaches through an "
                                                     "OpenAI-compatible server: pass --reranker-url"),
])
def test_preset_misuse_exits_2(run_cli, args, message):
    result = run_cli("eval", *args)
    assert result.code == 2
    assert message in " ".join(result.err.split())
