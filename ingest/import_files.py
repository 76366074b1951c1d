"""Reading historian and CMMS exports: CSV or Parquet, in batches, as pandas frames.

The mapping says which column is what: :class:`ImportMapping` (a TOML file, or flags). Reading is
streamed (pyarrow's incremental CSV reader, Parquet row groups), so memory stays bounded by the
batch size whatever the file size. Every value is read as text first, then converted here, so one
bad cell rejects its row instead of failing the whole file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from forewarn.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 50_000  # rows per batch: bounded memory, and one COPY transaction each
_CSV_BLOCK_BYTES = 4 << 20


class ImportMapping(BaseModel):
    """Which column holds what, and how to read timestamps. Flags override a mapping file."""

    model_config = ConfigDict(extra="forbid")
    shape: Literal["wide", "long", "auto"] = Field(
        default="auto", description="wide: one column per sensor; long: sensor and value columns"
    )
    machine: str = Field(default="machine", description="Column with the machine id")
    machine_id: str | None = Field(
        default=None, description="Every row belongs to this machine (file without machine column)"
    )
    ts: str = Field(default="ts", description="Timestamp column")
    ts_format: str | None = Field(
        default=None,
        description="strftime format, or epoch_s / epoch_ms; default ISO 8601",
    )
    timezone: str = Field(default="UTC", description="Zone of timestamps without an offset")
    sensor: str = Field(default="sensor", description="long: column with the sensor name")
    value: str = Field(default="value", description="long: column with the value")
    regime: str | None = Field(default=None, description="Optional operating-regime column")
    sensors: dict[str, str] = Field(
        default_factory=dict, description="File column (wide) or tag (long) -> registry sensor"
    )
    ignore: list[str] = Field(default_factory=list, description="wide: columns to leave out")
    delimiter: str = Field(default=",", min_length=1, max_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name like Europe/Berlin)"
            ) from None
        return v


M = TypeVar("M", bound=BaseModel)


def load_mapping(
    path: Path | None,
    overrides: dict[str, Any],
    model: type[M] = ImportMapping,  # type: ignore[assignment]
) -> M:
    """The mapping file (TOML) with flags applied on top; InputError names the bad field."""
    data: dict[str, Any] = {}
    source = "flags"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: no such mapping file") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path}: not valid TOML: {exc}") from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        field = ".".join(str(p) for p in e["loc"])
        raise InputError(
            f"{source}: field {field!r}: {str(e['msg']).removeprefix('Value error, ')}"
        ) from None


def _kind(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    raise InputError(f"{path}: expected a .csv or .parquet file")


def columns_of(path: Path, mapping: ImportMapping) -> list[str]:
    """The file's column names (CSV header or Parquet schema)."""
    if _kind(path) == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    import csv

    with path.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f, delimiter=mapping.delimiter), None)
    if not header:
        raise InputError(f"{path}: empty file (expected a header row)")
    return [h.strip() for h in header]


def count_rows(path: Path) -> int:
    """Data rows in the file (for the progress bar): Parquet metadata, or CSV newlines."""
    if _kind(path) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    n = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return max(0, n + (last != b"\n") - 1)


def read_arrow(
    path: Path, mapping: ImportMapping, columns: list[str], batch_rows: int = BATCH_ROWS
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(number of the first data row, batch) over the file, at most ``batch_rows`` rows each;
    CSV columns are text (converted by the caller, so one bad cell rejects only its row)."""
    import pyarrow as pa

    start = 1
    if _kind(path) == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            yield start, batch
            start += batch.num_rows
        return
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, encoding="utf-8"),
        parse_options=pacsv.ParseOptions(delimiter=mapping.delimiter),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=True,
            null_values=["", "NaN", "nan", "NULL", "null", "NA"],
        ),
    )
    try:
        for batch in reader:
            names = [str(c).strip().lstrip("\ufeff") for c in batch.schema.names]
            batch = pa.RecordBatch.from_arrays(batch.columns, names=names)
            for lo in range(0, batch.num_rows, batch_rows):
                part = batch.slice(lo, batch_rows)
                yield start, part
                start += part.num_rows
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: CSV unreadable after data row {start - 1}: {exc}") from None


def read_batches(
    path: Path, mapping: ImportMapping, columns: list[str], batch_rows: int = BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """:func:`read_arrow` as pandas frames whose index is the row number (1 = first data row)."""
    for start, batch in read_arrow(path, mapping, columns, batch_rows):
        df = batch.to_pandas()
        df.index = pd.RangeIndex(start, start + len(df))
        yield df


_OFFSET = r"(?:Z|z|[+-]\d\d:?\d\d)$"


def _parse_text(text: pd.Series, fmt: str | None, zone: str) -> pd.Series:
    """Parse one kind of timestamp text (all with offsets, or all without) to UTC."""
    try:
        ts = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce")
    except (ValueError, TypeError):  # offsets that differ row to row
        ts = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True)
    if ts.dtype == object:
        ts = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True)
    if getattr(ts.dt, "tz", None) is None:
        ts = ts.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    return ts.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


def parse_times(col: pd.Series, mapping: ImportMapping) -> pd.Series:
    """UTC timestamps (NaT where unparseable, ambiguous or nonexistent in the zone).

    Text without an offset is local time in ``mapping.timezone``; text with one (``Z``,
    ``+01:00``) is taken as given, even when both kinds are mixed in one column.
    """
    fmt = mapping.ts_format
    if pd.api.types.is_datetime64_any_dtype(col):
        ts = col
        if getattr(ts.dt, "tz", None) is None:
            ts = ts.dt.tz_localize(mapping.timezone, ambiguous="NaT", nonexistent="NaT")
        return ts.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    if fmt in ("epoch_s", "epoch_ms"):
        num = pd.to_numeric(col, errors="coerce")
        ts = pd.to_datetime(num, unit="s" if fmt == "epoch_s" else "ms", utc=True, errors="coerce")
        return ts.astype("datetime64[us, UTC]")
    text = col.astype("string").str.strip()
    if fmt is not None:
        return _parse_text(text, fmt, mapping.timezone)
    offset = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    if offset.all() or not offset.any():
        return _parse_text(text, fmt, mapping.timezone)
    out = pd.Series(pd.NaT, index=col.index, dtype="datetime64[us, UTC]")
    out[offset] = _parse_text(text[offset], fmt, mapping.timezone)
    out[~offset] = _parse_text(text[~offset], fmt, mapping.timezone)
    return out


def to_numbers(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float values with NaN for empty, mask of cells that were text but not a number)."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(col), bool)
    num = pd.to_numeric(col, errors="coerce")
    values = num.to_numpy(dtype=float, na_value=np.nan)
    bad = np.isnan(values) & col.notna().to_numpy()
    return values, bad
