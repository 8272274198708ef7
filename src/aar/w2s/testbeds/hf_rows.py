"""Rows of one Hugging Face dataset split: through ``datasets``, or straight from the repo's parquet files.

Most sources load with ``datasets.load_dataset``. A repo that still ships a loading script
(``BAAI/TACO`` has ``TACO.py``, and ``datasets`` >= 4 refuses script repos with "Dataset scripts
are no longer supported") is read from its parquet files instead: listed on the hub, downloaded
into the hub cache, and streamed batch by batch with only the columns its converter uses, so a
multi-GB split (TACO's train split is ~2.6 GB) never sits in memory.

``AAR_HF_LOCAL_DIR`` points at a local mirror, one folder per repo named ``<owner>__<name>``:

- ``datasets`` sources: ``<dir>/<owner>__<name>/<split>.jsonl`` in the dataset's own schema;
- parquet sources: a copy of the repo's files, e.g.
  ``hf download BAAI/TACO --repo-type dataset --include 'ALL/*' --local-dir <dir>/BAAI__TACO``.

This is how the tests run offline, and how to use a pre-downloaded mirror.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aar.w2s.testbeds.base import TestbedError

EXTRA = "Hugging Face testbeds need the hf extra: pip install 'aar[hf]'"
LOCAL_ENV = "AAR_HF_LOCAL_DIR"


@dataclass(frozen=True)
class HFSource:
    """One split of one hub dataset and the converter that turns its rows into records.

    Attributes:
        path: The hub id, ``owner/name``.
        split: The split to read.
        convert: ``convert(rows, rng, group)`` yielding ``Record``s.
        group: ``"id"`` or ``"ood"`` (a converter may assign groups itself).
        config: ``datasets`` config name.
        data_dir: ``datasets`` data directory.
        parquet: Glob of the repo's parquet files for the split (``{split}`` is filled in). When set,
            the files are read directly instead of through ``datasets.load_dataset``.
        columns: The only columns read from the parquet files (all when empty).
    """

    path: str
    split: str
    convert: Callable[..., Iterator]
    group: str
    config: str | None = None
    data_dir: str | None = None
    parquet: str | None = None
    columns: tuple[str, ...] = ()

    @property
    def pattern(self) -> str:
        """The parquet glob for this split, relative to the repo root."""
        return (self.parquet or "").format(split=self.split)

    @property
    def mirror_name(self) -> str:
        """The folder name of this repo in a local mirror."""
        return self.path.replace("/", "__")


def load_rows(src: HFSource) -> Iterable[dict]:
    """Rows of one dataset split, from ``AAR_HF_LOCAL_DIR`` when set, else from the hub.

    Raises:
        TestbedError: The extra is missing, the mirror lacks the files, or the hub read failed.
    """
    local = os.environ.get(LOCAL_ENV)
    if src.parquet:
        files = _local_parquet(Path(local), src) if local else _hub_parquet(src)
        _check_columns(files, src.columns)
        return _stream_parquet(files, src.columns)
    try:
        import datasets
    except ImportError:
        raise TestbedError(EXTRA) from None
    if local:
        path = Path(local) / src.mirror_name / f"{src.split}.jsonl"
        if not path.exists():
            raise TestbedError(f"{LOCAL_ENV} is set but {path} is missing")
        return datasets.load_dataset("json", data_files=str(path), split="train")
    try:
        return datasets.load_dataset(src.path, src.config, split=src.split, data_dir=src.data_dir)
    except Exception as exc:  # network, auth, schema: say which dataset failed
        raise TestbedError(f"could not load {src.path} ({src.split}) from Hugging Face: {exc}") from None


def _local_parquet(root: Path, src: HFSource) -> list[Path]:
    repo = root / src.mirror_name
    files = sorted(p for p in repo.rglob("*.parquet") if fnmatch.fnmatch(p.relative_to(repo).as_posix(), src.pattern))
    if not files:
        raise TestbedError(f"{LOCAL_ENV} is set but {repo} has no files matching {src.pattern}")
    return files


def _hub_parquet(src: HFSource) -> list[Path]:
    """List the repo's files, keep those matching the split's glob, and download them (cached)."""
    try:
        from huggingface_hub import HfApi, hf_hub_download
    except ImportError:
        raise TestbedError(EXTRA) from None
    try:
        names = sorted(
            n for n in HfApi().list_repo_files(src.path, repo_type="dataset") if fnmatch.fnmatch(n, src.pattern)
        )
        if not names:
            raise TestbedError(f"{src.path} has no files matching {src.pattern} on Hugging Face")
        return [Path(hf_hub_download(src.path, n, repo_type="dataset")) for n in names]
    except TestbedError:
        raise
    except Exception as exc:  # network, auth, disk: say which dataset failed
        raise TestbedError(f"could not download {src.path} ({src.pattern}) from Hugging Face: {exc}") from None


def _check_columns(files: list[Path], columns: tuple[str, ...]) -> None:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise TestbedError(EXTRA) from None
    for f in files:
        try:
            names = set(pq.read_schema(f).names)
        except Exception as exc:  # corrupt or truncated download
            raise TestbedError(f"{f}: not a readable parquet file: {exc}") from None
        missing = [c for c in columns if c not in names]
        if missing:
            raise TestbedError(f"{f}: no column(s) {missing}; it has {sorted(names)}")


def _stream_parquet(files: list[Path], columns: tuple[str, ...], batch_size: int = 64) -> Iterator[dict]:
    """Rows of the files in order, a small batch at a time, with only ``columns`` decoded."""
    import pyarrow.parquet as pq

    for f in files:
        with pq.ParquetFile(f) as pf:
            for batch in pf.iter_batches(batch_size=batch_size, columns=list(columns) or None):
                yield from batch.to_pylist()
