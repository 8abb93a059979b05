"""``slmbench gguf``: a checkpoint exported and quantized once, then served from the cache."""

from __future__ import annotations

from pathlib import Path

from tiny_models import build_tiny_arch

from harness.artefacts.gguf_header import read_gguf_summary
from harness.cli import main


def test_each_type_is_built_once_and_printed_one_path_per_line(tmp_path, capsys):
    folder, _ = build_tiny_arch(tmp_path / "tiny", "llama")
    assert main(["gguf", "--model", str(folder), "--type", "f16,q8_0"]) == 0
    paths = [Path(line) for line in capsys.readouterr().out.split()]
    assert [p.name for p in paths] == ["model-f16.gguf", "model-q8_0.gguf"]
    assert [read_gguf_summary(p).file_type for p in paths] == ["F16", "Q8_0"]
    stamps = [p.stat().st_mtime_ns for p in paths]

    assert main(["gguf", "--model", str(folder), "--type", "Q8_0"]) == 0
    assert Path(capsys.readouterr().out.strip()) == paths[1]
    assert [p.stat().st_mtime_ns for p in paths] == stamps  # served from the cache

    (folder / "extra.txt").write_text("changed checkpoint")  # new content, new cache folder
    assert main(["gguf", "--model", str(folder), "--type", "f16"]) == 0
    assert Path(capsys.readouterr().out.strip()).parent != paths[0].parent


def test_bad_type_and_bad_folder_are_one_line_errors(tmp_path, capsys):
    assert main(["gguf", "--model", str(tmp_path), "--type", "f16"]) == 2
    assert "is not a transformers checkpoint folder" in capsys.readouterr().err
    assert main(["gguf", "--model", str(tmp_path), "--type", "q9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown type 'q9'" in err and "q4_k_m" in err
