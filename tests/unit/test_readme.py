"""The README's configuration table and quick start stay true to the code."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from forewarn.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _variables(model: type[BaseModel], prefix: str = "FOREWARN_") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _variables(ann, f"{prefix}{name.upper()}__")
        else:
            out.append(f"{prefix}{name.upper()}")
    return out


def test_every_setting_is_documented() -> None:
    missing = [v for v in _variables(Settings) if f"`{v}`" not in README]
    assert missing == []


def test_quick_start_is_the_two_make_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [
        line.split("#")[0].strip() for line in quick.splitlines() if line.startswith("make ")
    ]
    assert commands == ["make demo", "make test"]
