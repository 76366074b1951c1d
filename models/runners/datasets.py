"""Loaders for the public benchmark datasets (NASA C-MAPSS, AI4I 2020).

The data never lives in the repository: it is read from an explicit path, from the
``FOREWARN_DATA_DIR`` environment variable, or from ``../shared/data`` beside the checkout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forewarn.errors import DatasetNotFoundError

DATA_DIR_ENV = "FOREWARN_DATA_DIR"
CMAPSS_SETTINGS: tuple[str, ...] = ("setting1", "setting2", "setting3")
CMAPSS_SENSORS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 22))
CMAPSS_COLUMNS: tuple[str, ...] = ("machine_id", "cycle", *CMAPSS_SETTINGS, *CMAPSS_SENSORS)
CMAPSS_SUBSETS: tuple[str, ...] = ("FD001", "FD002", "FD003", "FD004")
AI4I_FILE = "ai4i2020.csv"
AI4I_TARGET = "Machine failure"
AI4I_MODE_FLAGS: tuple[str, ...] = ("TWF", "HDF", "PWF", "OSF", "RNF")  # labels, never inputs


def default_data_dir() -> Path:
    """``$FOREWARN_DATA_DIR`` or ``<repo>/../shared/data``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data"


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """The data directory to use; raise `DatasetNotFoundError` if it does not exist."""
    path = Path(data_dir) if data_dir is not None else default_data_dir()
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"dataset directory {path} not found: pass --data DIR or set {DATA_DIR_ENV}"
        )
    return path


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, f"{stem}.gz"):
        for base in (directory, directory / "cmapss"):
            if (base / name).is_file():
                return base / name
    raise DatasetNotFoundError(f"{stem}[.gz] not found in {directory} (or its cmapss/ folder)")


def read_cmapss_table(path: Path) -> pd.DataFrame:
    """One C-MAPSS train/test file: 26 whitespace-separated columns, gzipped or plain."""
    df = pd.read_csv(path, sep=r"\s+", header=None, compression="infer")
    if df.shape[1] != len(CMAPSS_COLUMNS):
        raise ValueError(f"{path}: expected {len(CMAPSS_COLUMNS)} columns, got {df.shape[1]}")
    df.columns = list(CMAPSS_COLUMNS)
    df["machine_id"] = df["machine_id"].astype(int)
    df["cycle"] = df["cycle"].astype(int)
    return df


@dataclass(frozen=True)
class CMAPSS:
    """One C-MAPSS subset: run-to-failure training units, truncated test units, true test RUL."""

    subset: str
    train: pd.DataFrame
    test: pd.DataFrame
    test_rul: pd.Series  # indexed by test machine_id


def load_cmapss(data_dir: Path | str | None, subset: str) -> CMAPSS:
    """Load ``train_/test_/RUL_<subset>`` from ``data_dir`` (or its ``cmapss/`` folder)."""
    subset = subset.upper()
    if subset not in CMAPSS_SUBSETS:
        raise ValueError(f"unknown C-MAPSS subset {subset!r}; expected one of {CMAPSS_SUBSETS}")
    directory = resolve_data_dir(data_dir)
    train = read_cmapss_table(_find(directory, f"train_{subset}.txt"))
    test = read_cmapss_table(_find(directory, f"test_{subset}.txt"))
    rul = pd.read_csv(
        _find(directory, f"RUL_{subset}.txt"), sep=r"\s+", header=None, compression="infer"
    ).iloc[:, 0]
    units = sorted(test["machine_id"].unique())
    if len(rul) != len(units):
        raise ValueError(f"{subset}: {len(rul)} RUL lines for {len(units)} test units")
    return CMAPSS(subset, train, test, pd.Series(rul.to_numpy(), index=units, name="rul"))


def load_ai4i(path: Path | str | None = None) -> pd.DataFrame:
    """AI4I 2020 (UTF-8 with BOM); ``path`` is the CSV or a directory containing it."""
    p = Path(path) if path is not None else resolve_data_dir() / "ai4i2020"
    if p.is_dir():
        candidates = [p / AI4I_FILE, p / "ai4i2020" / AI4I_FILE]
        p = next((c for c in candidates if c.is_file()), candidates[0])
    if not p.is_file():
        raise DatasetNotFoundError(f"AI4I 2020 file {p} not found: pass --data FILE")
    df = pd.read_csv(p, encoding="utf-8-sig")
    missing = {AI4I_TARGET, "Type", "Torque [Nm]"} - set(df.columns)
    if missing:
        raise ValueError(f"{p}: not the AI4I 2020 file, missing columns {sorted(missing)}")
    return df
