"""A worker's workspace and what its sandbox shows hold no label and no file a label can be read from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from aar.config import Settings
from aar.labels import store
from aar.labels.store import labels_dir, read_label_rows
from aar.w2s.testbeds.base import TEST_SPLITS
from aar.w2s.workbench import Workbench
from aar.w2s.workspace import build_workspace

PUBLIC_KEYS = {"id", "prompt", "answer_a", "answer_b", "question", "candidate", "weak"}
LEAK_ACCURACY = 0.95  # a per-item vector this close to the labels is a copy of them (the ceiling is far lower)


def _vectors_by_id(path: Path) -> dict[str, dict[str, float]]:
    """Numeric fields per item id in a JSON / JSONL file."""
    out: dict[str, dict[str, float]] = {}
    text = path.read_text(errors="replace")
    rows = []
    try:
        data = json.loads(text)
        rows = data if isinstance(data, list) else [data]
    except ValueError:
        for line in text.splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    for r in rows:
        if isinstance(r, dict) and "id" in r:
            out[str(r["id"])] = {k: float(v) for k, v in r.items() if isinstance(v, int | float)}
    return out


def label_leaks(roots: list[Path], labels: dict[str, int], split_ids: dict[str, list[str]], secrets: list[str],
                hidden_ids: set[str]) -> list[str]:
    """Every way the files under ``roots`` give labels away (empty when none does)."""
    leaks: list[str] = []
    y = {s: np.array([labels[i] for i in ids]) for s, ids in split_ids.items()}
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            raw = path.read_bytes()
            if any(s.encode() in raw for s in secrets):
                leaks.append(f"{path}: holds a secret (salt)")
            if path.suffix in (".json", ".jsonl"):
                rows = _vectors_by_id(path)
                if hidden_ids & set(rows):
                    leaks.append(f"{path}: names weak_train items")
                keys = {k for row in rows.values() for k in row}
                if path.suffix == ".jsonl" and rows and keys - PUBLIC_KEYS:
                    leaks.append(f"{path}: non-public fields {sorted(keys - PUBLIC_KEYS)}")
                for key in keys:
                    for split, ids in split_ids.items():
                        v = np.array([rows.get(i, {}).get(key, np.nan) for i in ids])
                        ok = ~np.isnan(v)
                        if ok.sum() >= 50 and ((v[ok] > 0.5) == y[split][ok]).mean() >= LEAK_ACCURACY:
                            leaks.append(f"{path}: field {key!r} matches {split} labels")
            if path.suffix == ".npy":
                arr = np.load(path, allow_pickle=False)
                for split, ids in split_ids.items():
                    if arr.shape[:1] == (len(ids),):
                        cols = arr.reshape(len(ids), -1).astype(np.float64)
                        hard = cols > np.median(cols, axis=0)
                        agree = (hard == y[split][:, None]).mean(axis=0)
                        if np.maximum(agree, 1 - agree).max() >= LEAK_ACCURACY:
                            leaks.append(f"{path}: a column matches {split} labels")
    return leaks


@pytest.fixture(scope="module")
def built(small_home: Settings, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    ws = tmp_path_factory.mktemp("ws")
    info = build_workspace(ws, "wordsense", small_home)
    labels = {r["id"]: int(r["label"]) for s in TEST_SPLITS for r in read_label_rows("wordsense", s, small_home)}
    wb = Workbench("wordsense", small_home)
    split_ids = {s: wb.ids(s) for s in TEST_SPLITS}
    hidden = {r["id"] for r in read_label_rows("wordsense", "weak_train", small_home)}
    salt = store.testbed_salt("wordsense", small_home)
    return info, labels, split_ids, hidden, salt


def test_workspace_holds_no_label(built, small_home: Settings) -> None:  # type: ignore[no-untyped-def]
    info, labels, split_ids, hidden, salt = built
    assert {p.name for p in info.root.iterdir()} >= {"README.md", "NOTEBOOK.md", "findings", "ideas", "library"}
    roots = [info.root, *info.sandbox_paths]
    assert not any(labels_dir("wordsense", small_home).resolve() in [r, *r.parents] for r in roots)
    assert label_leaks(roots, labels, split_ids, [salt], hidden) == []
    readme = (info.root / "README.md").read_text()
    assert "PGR" in readme and "private" in readme and "submit_predictions" in readme
    assert (info.root / "library" / "methods" / "vanilla.py").exists()


def test_leak_scanner_catches_planted_labels(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Control: the scanner is not blind. A label file, a label column and the salt are each caught."""
    info, labels, split_ids, hidden, salt = built
    ids = split_ids["test_id"]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"id": i, "weak": labels[i]}) for i in ids))
    np.save(tmp_path / "b.npy", np.stack([np.random.default_rng(0).random(len(ids)),
                                         [labels[i] for i in ids]], axis=1))
    (tmp_path / "c.txt").write_text(f"salt={salt}")
    (tmp_path / "d.json").write_text(json.dumps([{"id": next(iter(hidden))}]))
    leaks = label_leaks([tmp_path], labels, split_ids, [salt], hidden)
    assert len(leaks) == 4, leaks


def test_workbench_vanilla_matches_the_library_method(built, small_home: Settings) -> None:  # type: ignore[no-untyped-def]
    """The workspace's fast path is the same model as the method library's vanilla (same features, same head)."""
    from aar.w2s.experiment import run_experiment

    wb = Workbench("wordsense", small_home)
    fast = wb.predict_tests(wb.fit((wb.weak("strong_train") > 0.5).astype(float)))
    ref = run_experiment("vanilla", "wordsense", settings=small_home).test_probs
    for s in TEST_SPLITS:
        np.testing.assert_allclose(fast[s], ref[s], atol=2e-3)


def test_sandbox_sees_data_but_not_labels(built, small_home: Settings) -> None:  # type: ignore[no-untyped-def]
    """Inside bwrap the worker reads the public folder and runs a recipe; the label store is invisible."""
    from agentkit import bwrap_or_skip

    from aar.agents.worker import WorkerConfig, open_sandbox

    bwrap_or_skip()
    info = built[0]
    sb = open_sandbox(WorkerConfig(team="t", worker="w"), info.root, info.sandbox_paths, small_home)
    lab = labels_dir("wordsense", small_home).resolve()
    listing = sb.exec(["ls", str(lab)])
    assert listing.stdout.strip() == "", listing  # absent, or an empty mask: not even file names
    read = sb.exec(["cat", str(lab / "test_id.jsonl")])
    assert read.exit_code != 0 and '"label"' not in read.stdout
    public = sb.exec(["ls", str(info.sandbox_paths[0])])
    assert {"strong_train.jsonl", "test_id.jsonl", "features"} <= set(public.stdout.split()), public
    (info.root / "ideas" / "v").mkdir(parents=True, exist_ok=True)
    (info.root / "ideas" / "v" / "recipe.json").write_text('{"loss": "logconf"}')
    os.chmod(info.root / "ideas" / "v", 0o777)
    r = sb.exec(["python", "-m", "aar.w2s.recipes", "ideas/v/recipe.json", "--testbed", "wordsense",
                 "--out", "ideas/v"], timeout=300)
    assert r.ok, r.stderr[-2000:]
    assert json.loads((info.root / "ideas" / "v" / "result.json").read_text())["families"] == ["loss_function"]


def test_host_never_follows_links_planted_in_the_workspace(small_home: Settings, tmp_path: Path) -> None:
    """A rebuilt workspace replaces planted links instead of writing through them; evolve reads no linked file."""
    from aar.agents.evolve import _front_matter
    from aar.sandbox import SandboxConfig, get_sandbox

    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    for name in ("notes.md", "readme.md"):
        (outside / name).write_text("host file\n")
    (outside / "finding.md").write_text('---\nid: 9\nkind: "result"\nconfig: {"loss": "logconf"}\n---\n')
    (ws / "NOTEBOOK.md").symlink_to(outside / "notes.md")
    (ws / "README.md").symlink_to(outside / "readme.md")
    (ws / "library").symlink_to(outside)
    build_workspace(ws, "wordsense", small_home)
    assert (outside / "notes.md").read_text() == (outside / "readme.md").read_text() == "host file\n"
    assert sorted(p.name for p in outside.iterdir()) == ["finding.md", "notes.md", "readme.md"]
    assert not (ws / "README.md").is_symlink() and "PGR" in (ws / "README.md").read_text()
    (ws / "findings" / "f00009-x.md").symlink_to(outside / "finding.md")
    sb = get_sandbox("local", SandboxConfig(workspace=ws))
    assert _front_matter(sb, "findings/f00009-x.md") == {}
    (ws / "findings" / "f00010-y.md").write_text((outside / "finding.md").read_text())
    assert _front_matter(sb, "findings/f00010-y.md")["config"] == {"loss": "logconf"}
