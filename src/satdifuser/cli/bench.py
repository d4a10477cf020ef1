"""``satdifuser bench <name> [args]``: run one benchmark from ``satdifuser.bench.<name>``."""

from __future__ import annotations

import importlib

from satdifuser.errors import UnknownNameError

BENCHMARKS: dict[str, str] = {
    "speed": "extraction speed: reference pipeline vs batched truncated pass (CPU)",
    "eurosat": "EuroSAT classification benchmark",
    "dubai": "Dubai aerial segmentation benchmark",
    "probe_speed": "whole 40-epoch GW probe: reference recomputation vs extract-once cache",
    "geobench": "GEO-Bench protocol: tasks x partitions x seeds x models, IQM, resumable",
}

USAGE = (
    "usage: satdifuser bench <name> [options]\n\nbenchmarks:\n"
    + "\n".join(f"  {name:<8} {text}" for name, text in BENCHMARKS.items())
    + "\n\nRun `satdifuser bench <name> --help` for the options of one benchmark."
)


def run(argv: list[str]) -> int:
    """Dispatch to ``satdifuser.bench.<name>.run(rest)``."""
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        raise UnknownNameError(
            f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)} "
            "(satdifuser bench --help)"
        )
    module = importlib.import_module(f"satdifuser.bench.{name}")
    return int(module.run(rest) or 0)


__all__ = ["BENCHMARKS", "run"]
