"""Plot the EuroSAT val learning curve of the shipped backbone line (issue 14).

Reads ``docs/benchmarks/learning_curve_eurosat.csv`` (the val numbers of docs/BENCHMARKS.md
section 4, one row per measured snapshot) and writes a two-panel PNG (10 and 200 labels per class)
with images seen on a log axis and the val anchors of the same split as dashed lines.

    python benchmarks/plot_learning_curve.py [--csv CSV] [--out PNG]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# val-split anchors (docs/BENCHMARKS.md section 4): EfficientNet-Lite0 ImageNet probe, small CNN
ANCHORS = {"10": {"EfficientNet-Lite0 probe": 79.4, "small CNN (scratch)": 65.8},
           "200": {"EfficientNet-Lite0 probe": 91.2, "small CNN (scratch)": 84.6}}  # fmt: skip


def read_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's rows (comment lines starting with '#' skipped)."""
    with path.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def plot(rows: list[dict[str, str]], out: Path) -> None:
    """Write the two-panel PNG; step 0 (random init) is drawn at 1,000 images seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    images = [max(int(r["images_seen"]), 1000) for r in rows]
    for ax, budget in zip(axes, ("10", "200"), strict=True):
        lines = ((f"gw{budget}", "GW fusion + linear"), (f"pooled{budget}", "pooled probe"))
        for key, label in lines:
            ax.plot(images, [float(r[key]) for r in rows], marker="o", label=label)
        for (name, value), style in zip(ANCHORS[budget].items(), ("--", ":"), strict=True):
            ax.axhline(value, color="grey", linestyle=style, label=f"{name} ({value})")
        ax.set_xscale("log")
        ax.set_title(f"EuroSAT val OA, {budget} labels per class")
        ax.set_xlabel("images seen in pre-training (step 0 drawn at 1e3)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("OA %")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, default=ROOT / "docs/benchmarks/learning_curve_eurosat.csv")
    p.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/learning_curve_eurosat.png")
    args = p.parse_args()
    plot(read_rows(args.csv), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
