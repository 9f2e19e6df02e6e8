"""Helpers shared by the benchmark scripts: where the data is, and writing JSON + markdown."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def data_dir() -> Path:
    """$VAEKIT_DATA, else ../shared/data beside the repository (as in CI)."""
    env = os.environ.get("VAEKIT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_results(name: str, payload: dict, table_md: str) -> tuple[Path, Path]:
    """Write ``results/NAME.json`` and ``results/NAME.md``; return both paths."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(table_md.rstrip() + "\n")
    return json_path, md_path


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
