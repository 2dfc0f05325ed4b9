"""Result rows of a benchmark run, printed as a Markdown table and written as JSON.

A row is one measure of one workload: flowgen's value, the peer's value (None when the peer
library is missing or the measure has no peer), their ratio flowgen / peer, and for speed
measures the target: the largest ratio that counts as met.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

COLUMNS = ("workload", "measure", "unit", "flowgen", "peer", "flowgen/peer", "target", "met")


@dataclass(frozen=True)
class Row:
    """One measure: ``unit`` e.g. "ms/step", "count", "NFE"; ``target``: max ratio (speed rows)."""

    workload: str
    measure: str
    unit: str
    flowgen: float | None
    peer: float | None = None
    target: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.flowgen is None or self.peer is None or self.peer == 0:
            return None
        return self.flowgen / self.peer

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        return None if ratio is None or self.target is None else ratio <= self.target

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def fmt(value: float | bool | None) -> str:
    """'-' for missing values, yes/no for booleans, 4 significant digits otherwise."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}"


def markdown(rows: Sequence[Row]) -> str:
    """A Markdown table of ``rows`` with the columns ``COLUMNS`` (pipes in cells escaped)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        target = None if row.target is None else f"<= {row.target:g}"
        cells = [row.workload, row.measure, row.unit, fmt(row.flowgen), fmt(row.peer), fmt(row.ratio),
                 target or "-", fmt(row.met)]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def write_json(path: str | Path, rows: Sequence[Row], meta: Mapping[str, Any]) -> None:
    """{"meta": meta, "rows": [row dicts with ratio and met]} at ``path``."""
    payload = {"meta": dict(meta), "rows": [row.to_dict() for row in rows]}
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")


def num_parameters(module: Any) -> int:
    """Number of trainable parameters of a torch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def parameter_row(workload: str, flowgen: Any, peer: Any | None, measure: str = "parameters") -> Row:
    """The parameter counts of flowgen's and the peer's models (None: no peer)."""
    return Row(workload, measure, "count", num_parameters(flowgen), None if peer is None else num_parameters(peer))
