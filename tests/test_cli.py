"""The `gridrank` command: exit codes, output formats, status."""

import json


def test_index_search_status_round_trip(run_cli, media_dir):
    result = run_cli("index", media_dir, "--tiny")
    assert result.code == 0, result.err
    assert "indexed" in result.out
    assert "TINY PROFILE" in result.err

    result = run_cli("search", "a cat on a sofa", "--k", "3")  # remembers the last index and its model
    assert result.code == 0, result.err
    assert "3 results" in result.out

    result = run_cli("search", "a goal", "--kind", "video", "--json")
    hits = json.loads(result.out)["hits"]
    assert hits
    assert all(h["kind"] == "video" and h["timestamp"] is not None for h in hits)

    image = next(media_dir.rglob("*.jpg"))
    hits = json.loads(run_cli("search", "--image", image, "--json", "--k", "1").out)["hits"]
    assert hits[0]["path"] == str(image.resolve())

    status = json.loads(run_cli("status", "--json").out)
    assert status["info"]["model"] == "gridrank-tiny-clip"
    assert status["counts"]["images"] > 0
    assert status["counts"]["videos"] > 0
    assert "images" in run_cli("status").out


def test_skips_show_in_summary_and_status(run_cli, media_dir):
    (media_dir / "bad.jpg").write_text("text")
    result = run_cli("index", media_dir, "--tiny")
    assert result.code == 0
    assert "1 skipped: see gridrank status" in result.out
    status = run_cli("status", "--index", media_dir / ".gridrank")
    assert "bad.jpg" in status.out
    assert "not an image" in status.out


def test_missing_root_exits_2(run_cli, tmp_path):
    result = run_cli("index", tmp_path / "nope", "--tiny")
    assert result.code == 2
    assert "not found" in result.err


def test_unwritable_index_folder_exits_2(run_cli, media_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("index", media_dir, "--tiny", "--index", blocker / "idx")
    assert result.code == 2
    assert "cannot write the index folder" in result.err


def test_search_without_an_index_exits_2(run_cli, tmp_path):
    result = run_cli("search", "x", "--index", tmp_path)
    assert result.code == 2
    assert "gridrank index" in result.err


def test_model_mismatch_exits_2(run_cli, media_dir):
    assert run_cli("index", media_dir, "--tiny").code == 0
    result = run_cli("search", "x", "--index", media_dir / ".gridrank", "--model", "RN50")
    assert result.code == 2
    assert "was built with gridrank-tiny-clip" in result.err


def test_bad_flags_exit_2(run_cli, media_dir):
    assert run_cli("search", "x", "--kind", "audio").code == 2
    assert run_cli("search", "--k", "3").code == 2
    result = run_cli("index", media_dir, "--tiny", "--batch-size", "0")
    assert result.code == 2
    assert "batch_size" in result.err


def test_rerank_and_fusion_flags(run_cli, media_dir):
    assert run_cli("index", media_dir, "--tiny").code == 0
    result = run_cli("search", "a cat", "--rerank", "first", "--k", "3", "--explain")
    assert result.code == 0, result.err
    assert "was" in result.out
    assert "rerank first with tiny-qwen2-vl" in result.out
    saved = [line.split("model saw ", 1)[1].strip() for line in result.out.splitlines() if "model saw" in line]
    assert saved
    assert all(path.endswith(".png") for path in saved)

    data = json.loads(run_cli("search", "a ball", "--kind", "video", "--fuse", "rrf", "--json").out)
    assert data["fusion"] == "rrf"
    assert data["rerank"] is None
    assert data["hits"]

    assert run_cli("search", "x", "--rerank", "magic").code == 2
    assert run_cli("search", "x", "--fuse", "rrf", "--kind", "image").code == 2


def test_summary_counts_every_skip_status_lists_and_unchanged_broken_files_are_not_retried(
        run_cli, media_dir, tiny_settings, tiny_encoder):
    import os

    from indexer.pipeline import run_index

    (media_dir / "bad.jpg").write_text("text")
    os.symlink(media_dir / "nowhere.jpg", media_dir / "dangling.jpg")  # a scan problem: it cannot be stat'ed
    result = run_cli("index", media_dir, "--tiny")
    assert result.code == 0, result.err
    status = json.loads(run_cli("status", "--json", "--index", media_dir / ".gridrank").out)
    assert len(status["skipped"]) == 2
    assert "2 skipped: see gridrank status" in result.out  # the summary and status agree

    def files_tried(**options) -> int:
        seen = []
        summary = run_index(media_dir, media_dir / ".gridrank", tiny_settings, encoder=tiny_encoder,
                            on_progress=seen.append, **options)
        assert summary.skipped == 2
        return seen[-1].total if seen else 0

    assert files_tried() == 0  # bad.jpg did not change: not decoded (nor logged) again
    assert files_tried(retry_skipped=True) == 1
    os.utime(media_dir / "bad.jpg", ns=(1, 1))  # changed (maybe fixed): tried again
    assert files_tried() == 1
    assert files_tried() == 0


def test_indexing_a_file_says_it_is_a_file_and_one_result_is_singular(run_cli, media_dir):
    photo = next(media_dir.rglob("*.jpg"))
    result = run_cli("index", photo, "--tiny")
    assert result.code == 2
    assert f"{photo} is a file: give the folder" in result.err
    assert run_cli("index", media_dir, "--tiny").code == 0
    one = run_cli("search", "a cat", "--k", "1")
    assert one.code == 0
    assert "1 result\n" in one.out or "1 result " in one.out
    assert "1 results" not in one.out


def test_every_search_names_its_index_and_the_current_folders_index_comes_before_the_last_one(
        run_cli, media_dir, tmp_path, monkeypatch):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(media_dir / "photos", other)
    assert run_cli("index", other, "--tiny").code == 0
    assert run_cli("index", media_dir, "--tiny").code == 0  # the last index built

    result = run_cli("search", "a cat", "--k", "1")
    assert f"index: {media_dir / '.gridrank'} (chosen by the last `gridrank index` run)" in result.out
    monkeypatch.chdir(other)  # inside another indexed folder: its own index, and the output says so
    result = run_cli("search", "a cat", "--k", "1", "--json")
    index = json.loads(result.out)["index"]
    assert index == {"path": str(other / ".gridrank"), "chosen_by": "the current folder"}
    assert all(str(other) in h["path"] for h in json.loads(result.out)["hits"])
    explicit = run_cli("search", "a cat", "--k", "1", "--index", media_dir / ".gridrank")
    assert f"index: {media_dir / '.gridrank'} (chosen by --index)" in explicit.out


def test_a_real_model_that_is_not_cached_fails_at_once_naming_it_and_leaves_no_folder(run_cli, media_dir, tmp_path,
                                                                                       monkeypatch):
    import os
    import subprocess
    import sys

    from huggingface_hub import constants

    # huggingface_hub reads HF_HUB_OFFLINE when first imported, maybe before the tests set it: say it again.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    index_dir = tmp_path / "new-index"
    result = run_cli("index", media_dir, "--model", "ViT-B-32", "--pretrained", "laion2b_s34b_b79k",
                     "--index", index_dir)  # the tests run with HF_HUB_OFFLINE=1
    assert result.code == 2
    assert "ViT-B-32 (laion2b_s34b_b79k) is not in the Hugging Face cache and HF_HUB_OFFLINE is set" in result.err
    assert "--model local-dir:PATH" in result.err
    assert not index_dir.exists()  # nothing left behind

    # Not marked offline, with a Hub that cannot be reached (a closed local port): one short probe, not retries.
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"} | {"HF_ENDPOINT": "http://127.0.0.1:9"}
    probe = subprocess.run([sys.executable, "-m", "app.cli", "index", str(media_dir), "--model", "ViT-B-32",
                            "--pretrained", "laion2b_s34b_b79k", "--index", str(index_dir)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 2
    assert "the Hub (http://127.0.0.1:9) cannot be reached" in probe.stderr
    assert not index_dir.exists()


def test_yes_no_flags_do_not_read_as_if_they_took_a_value(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    for command in ("index", "search", "status", "serve", "demo", "eval"):
        shown = run_cli(command, "--help").out
        assert [line for line in shown.splitlines() if "<bool>" in line] == [], command  # `--tiny`, not `--tiny <bool>`
        assert "--help " in shown and "--help <" not in shown, command  # typer's own flag too
    assert "<bool>" not in run_cli("--help").out
    assert "--tiny" in run_cli("search", "--help").out


def test_a_reranked_search_shows_no_weight_loading_bar(run_cli, media_dir):
    import os
    import subprocess
    import sys

    assert run_cli("index", media_dir, "--tiny").code == 0
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    quiet = subprocess.run([sys.executable, "-m", "app.cli", "search", "a cat", "--k", "2", "--rerank", "grid",
                            "--index", str(media_dir / ".gridrank")], env=env, capture_output=True, text=True,
                           timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "Loading weights" not in quiet.stderr  # -v shows it again


def test_broken_videos_are_skipped_without_decoder_noise_on_stderr(tmp_path):
    import shutil
    import subprocess
    import sys

    from sample_media import BROKEN

    media = tmp_path / "media"
    media.mkdir()
    for name in ("corrupt.mp4", "truncated.mp4"):
        shutil.copy(BROKEN / name, media / name)
    run = subprocess.run([sys.executable, "-m", "app.cli", "index", str(media), "--tiny"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "2 skipped" in run.stdout
    assert "ERROR opening" not in run.stderr  # decord's C++ logger
    assert "moov atom not found" not in run.stderr  # FFmpeg's, through decord


def test_each_command_reads_as_one_sentence_in_the_command_list():
    # typer's rich help keeps a docstring's line breaks: a summary wrapped in the source came out broken
    # mid-sentence in `gridrank --help` ("... and files skipped" / "with the reason.").
    import inspect

    from app.cli import app

    for command in app.registered_commands:
        summary = inspect.cleandoc(command.callback.__doc__).split("\n\n")[0]
        assert "\n" not in summary, command.callback.__name__
