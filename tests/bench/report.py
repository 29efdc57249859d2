"""Bench results as data, their JSON summary, and the readable table."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class RuntimeUnderTest:
    """A runtime the bench talks to, or the reason it is unavailable."""

    name: str
    socket: str | None = None
    pid: int | None = None
    version: str | None = None
    error: str | None = None


@dataclass
class Outcome:
    """One benchmark on one runtime: status "ok", "skipped" or "error"."""

    status: str
    figures: dict[str, float]
    reason: str | None = None


def summarise(results: dict[str, dict[str, Outcome]], runtimes: list[RuntimeUnderTest],
              quick: bool, host: dict[str, object]) -> dict[str, Any]:
    """The JSON document: per benchmark, each figure for every runtime and crid/containerd."""
    benchmarks = []
    for name, per_runtime in results.items():
        figure_names: list[str] = []
        for outcome in per_runtime.values():
            figure_names += [f for f in outcome.figures if f not in figure_names]
        figures = {}
        for figure in figure_names:
            values = {rt: o.figures.get(figure) for rt, o in per_runtime.items()}
            figures[figure] = values | {"ratio": _ratio(values.get("crid"),
                                                        values.get("containerd"))}
        benchmarks.append({
            "name": name,
            "status": {rt: o.status for rt, o in per_runtime.items()},
            "reasons": {rt: o.reason for rt, o in per_runtime.items() if o.reason},
            "figures": figures,
        })
    return {
        "quick": quick,
        "host": host,
        "runtimes": {rt.name: asdict(rt) for rt in runtimes},
        "ratio": "crid / containerd (below 1: crid is faster or smaller)",
        "benchmarks": benchmarks,
    }


def render_table(report: dict[str, Any]) -> str:
    """A fixed-width table: benchmark, figure, one column per runtime, ratio."""
    names = list(report["runtimes"])
    header = ["benchmark", "figure", *names, "crid/containerd"]
    rows = [header]
    for bench in report["benchmarks"]:
        for figure, values in bench["figures"].items():
            rows.append([bench["name"], figure, *(_cell(values.get(n), bench, n) for n in names),
                         _num(values.get("ratio"))])
        if not bench["figures"]:
            rows.append([bench["name"], "-", *(_cell(None, bench, n) for n in names), "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for bench in report["benchmarks"]:
        for rt, reason in bench["reasons"].items():
            lines.append(f"{bench['name']} on {rt}: {bench['status'][rt]}: {reason}")
    return "\n".join(lines)


def _cell(value: float | None, bench: dict[str, Any], runtime: str) -> str:
    if value is not None:
        return _num(value)
    return bench["status"].get(runtime, "-")


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


def _ratio(crid: float | None, containerd: float | None) -> float | None:
    if crid is None or not containerd:
        return None
    return crid / containerd
