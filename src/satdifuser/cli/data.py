"""``satdifuser data``: dataset tools (``data inspect PATH``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import NoReturn

from satdifuser.errors import ConfigError


class _Parser(argparse.ArgumentParser):
    """argparse that raises ConfigError (one line, exit 2 via the main dispatcher)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message}; run `satdifuser data inspect --help` for the options")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="satdifuser data", description="Dataset tools.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser(
        "inspect",
        help="detect a dataset folder's format, summarise it and draw a grid of samples",
        description="Detect the format of PATH (GEO-Bench task folder, EuroSAT-style class "
        "folders, image/mask folders, GeoTIFF folders), print a summary (task type, classes "
        "with counts, bands, image sizes, splits, value ranges) and write a PNG grid of "
        "samples (masks overlaid for segmentation).",
    )
    p.add_argument("path", help="dataset folder")
    p.add_argument(
        "--out", default=None, help="PNG file for the sample grid (default: ./<folder>_samples.png)"
    )
    p.add_argument("--samples", type=int, default=16, help="samples to read and draw (1-256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample choice")
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", "geobench", "eurosat", "mask_folder", "geotiff_folder", "geotiff_pairs"],
        help="skip detection and read PATH as this format",
    )
    p.add_argument("--no-grid", action="store_true", help="print the summary only")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def run(argv: list[str]) -> int:
    """Run ``satdifuser data ...``; returns the exit code."""
    args = _parser().parse_args(argv)
    from satdifuser.data.inspect import inspect_path, write_grid

    out: Path | None = None
    if not args.no_grid:
        name = Path(args.path).expanduser().resolve().name or "dataset"
        out = Path(args.out) if args.out else Path.cwd() / f"{name}_samples.png"
        if out.suffix.lower() != ".png":
            raise ConfigError(f"--out {out} must end in .png (the grid is a PNG image)")
    report = inspect_path(args.path, samples=args.samples, seed=args.seed, format=args.format)
    if out is not None:
        out = write_grid(report, out) if report.samples else None
    if args.json:
        doc = {
            "path": report.path,
            "format": report.format,
            **report.summary,
            "grid": str(out) if out else None,
        }
        print(json.dumps(doc, indent=1, default=str))
    else:
        print(report.text())
        if out is not None:
            print(f"{'sample grid':<14} {out}")
    return 0


__all__ = ["run"]
