"""``satdifuser embed``: one pooled embedding per image or tile, written as (Geo)Parquet.

Examples::

    satdifuser embed --backbone satdifuser-eurosat-tiny --dataset eurosat --split test \\
        --out emb.parquet --normalize
    satdifuser embed --model runs/eurosat/model --dataset eurosat --split test --out emb.parquet
    satdifuser embed --backbone tiny-pixel --tile 64 --out scenes.parquet scenes/*.tif

Datasets are named as in ``satdifuser extract`` (``eurosat``, ``geotiff-folder``,
``mask-folder``, ``geobench``, ``dubai`` or a ``package.module.Class`` path, with ``--root``,
``--split``, ``--budget``, ``--data-arg KEY=VALUE``); positional paths are image files or folders
(PNG, JPEG, GeoTIFF). Georeferenced inputs give GeoParquet. The columns and the schema
metadata are described in ``docs/embeddings.md``. A model trained on resampled imagery
(``input.resample`` in its config, e.g. 0.25) gets native pixels resized by that factor, as in
``satdifuser predict``; ``--resample`` overrides it (``--tile`` stays in native pixels). With
``--model`` the pixels also go through the model's input conversion, as in ``predict``: files
are read raw and mapped by ``model.prepare_raster`` (band selection and scaling of its input
contract; ``--scale`` instead divides them into [0, 1] for a model that takes [0, 1]),
then ``model.adapt_input`` (its input spec: multispectral, raw DN or z-scored bands
to RGB) runs before the extractor, for files and datasets alike; a file whose bands do not fit
is the error ``predict`` gives.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from satdifuser.cli import validate
from satdifuser.errors import ConfigError

DATASETS = {
    "eurosat": "satdifuser.data.eurosat.EuroSAT",
    "geotiff-folder": "satdifuser.data.geotiff_folder.GeoTiffFolder",
    "mask-folder": "satdifuser.data.mask_folder.MaskFolder",
    "geobench": "satdifuser.data.geobench.GeoBench",
    "dubai": "satdifuser.data.dubai_aerial.DubaiAerial",
}
"""Short names of ``--dataset``; any ``package.module.Class`` path works too."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``satdifuser embed`` (bad values are one-line errors)."""
    p = validate.OneLineArgumentParser(
        prog="satdifuser embed",
        description="Write one pooled embedding per image (or tile) as Parquet / GeoParquet.",
    )
    p.add_argument(
        "inputs", nargs="*", type=Path, help="image files or folders (instead of --dataset)"
    )
    p.add_argument("--out", required=True, type=Path, help="output .parquet file")
    src = p.add_argument_group("embedding source (one of)")
    src.add_argument("--backbone", default=None, help="registry name or checkpoint folder")
    src.add_argument("--model", type=Path, default=None, help="a saved model folder")
    src.add_argument(
        "--representation",
        choices=["fused", "maps"],
        default="fused",
        help="with --model: fused (what the head sees) or the extractor maps",
    )
    src.add_argument(
        "--resample",
        type=float,
        default=None,
        help="with --model: factor applied to input pixels before the model, in (0, 4] "
        "(default: the model's input.resample, the factor it was trained at; 0.25 = 4x coarser)",
    )
    src.add_argument(
        "--scale",
        type=validate.positive_float,
        default=None,
        help="with --model and image files: raw value that maps to 1.0 (e.g. 10000 for "
        "reflectance x 10,000), for models that take [0, 1], as in predict",
    )
    g = p.add_argument_group("extractor (with --backbone)")
    g.add_argument(
        "--timesteps",
        nargs="+",
        type=validate.int_list,
        default=None,
        help="e.g. 21 61 161 (or 21,61,161)",
    )
    g.add_argument(
        "--taps", nargs="+", default=None, help="tap patterns (default: the reference's)"
    )
    g.add_argument(
        "--image-size",
        type=validate.positive_int,
        default=None,
        help="working size (backbone default)",
    )
    g.add_argument("--seed", type=int, default=0)
    e = p.add_argument_group("embedding")
    e.add_argument(
        "--pool-size",
        type=validate.positive_int,
        default=1,
        help="pool each map to N x N before concatenating (1: global mean)",
    )
    e.add_argument("--normalize", action="store_true", help="L2-normalise each vector")
    d = p.add_argument_group("data")
    d.add_argument("--dataset", default=None, help=f"{', '.join(DATASETS)} or a class path")
    d.add_argument("--root", default=None, help="data root (default: $SATDIFUSER_DATA, shared/)")
    d.add_argument("--split", default=None, help="split name")
    d.add_argument("--budget", type=validate.positive_int, default=None, help="labels per class")
    d.add_argument(
        "--data-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra dataset argument (YAML value), repeatable",
    )
    d.add_argument(
        "--tile",
        type=validate.positive_int,
        default=None,
        help="cut GeoTIFF inputs into N x N tiles (one row per tile)",
    )
    d.add_argument("--limit", type=validate.positive_int, default=None, help="only the first N")
    r = p.add_argument_group("run")
    r.add_argument("--batch-size", type=validate.positive_int, default=16)
    r.add_argument("--num-workers", type=validate.non_negative_int, default=0)
    r.add_argument(
        "--device",
        type=validate.device,
        default="auto",
        help="auto (a GPU if any), cpu, cuda, cuda:N",
    )
    r.add_argument("--threads", type=validate.positive_int, default=None, help="torch CPU threads")
    r.add_argument("--no-progress", action="store_true")
    return p


def _check(args: argparse.Namespace) -> None:
    if (args.backbone is None) == (args.model is None):
        raise ConfigError("pass exactly one of --backbone NAME and --model DIR")
    if bool(args.inputs) == (args.dataset is not None):
        raise ConfigError("pass either --dataset NAME or image files/folders, not both or neither")
    if args.tile is not None and not args.inputs:
        raise ConfigError("--tile cuts image files given as paths; drop it with --dataset")
    if args.model is not None and (args.timesteps or args.taps or args.image_size):
        raise ConfigError("--timesteps/--taps/--image-size come from the saved model; drop them")
    if args.resample is not None and args.model is None:
        raise ConfigError("--resample overrides a saved model's factor; use it with --model DIR")
    if args.scale is not None and (args.model is None or not args.inputs):
        raise ConfigError(
            "--scale maps the raw pixels of image files into a saved model's [0, 1] input; use "
            "it with --model DIR and image files (a --dataset scales its own images)"
        )
    if args.out.suffix.lower() not in (".parquet", ".geoparquet"):
        raise ConfigError(f"--out {args.out} should end in .parquet; e.g. --out emb.parquet")
    if args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a folder; pass a file name like emb.parquet")


def make_embedder(args: argparse.Namespace) -> tuple[Any, Any]:
    """(Embedder, saved model or None) of the source options."""
    from satdifuser.embed import Embedder

    if args.model is not None:
        from satdifuser.model import SatDiFuserModel

        model = SatDiFuserModel.from_pretrained(args.model)
        embedder = Embedder.from_model(
            model,
            args.representation,
            args.pool_size,
            args.normalize,
            folder=args.model,
            resample=args.resample,
        )
        if args.resample is not None and embedder.resample != model.resample:
            print(
                f"note: --resample {embedder.resample:g} overrides the model's resample "
                f"{model.resample:g} (the factor it was trained at)",
                file=sys.stderr,
            )
        return embedder, model
    from satdifuser.features.extractor import FeatureExtractor

    timesteps = [t for item in args.timesteps for t in item] if args.timesteps else None
    fx = FeatureExtractor(
        backbone=args.backbone,
        timesteps=timesteps,
        taps=[t for i in args.taps for t in i.split(",") if t] if args.taps else None,
        image_size=args.image_size,
        seed=args.seed,
    )
    return Embedder.from_extractor(fx, args.pool_size, args.normalize), None


def make_input(args: argparse.Namespace, embedder: Any, model: Any) -> tuple[Any, dict[str, Any]]:
    """(dataset, description for the metadata) of the data options."""
    from torch.utils.data import Subset

    if args.inputs:
        from satdifuser.embed import ImageFiles, collect_files
        from satdifuser.predict.prepare import make_preparer

        files = collect_files(args.inputs)
        # predict's conversion (the model's own rules, or --scale where the model takes [0, 1])
        scale = None if model is None else make_preparer(model, args.scale)
        dataset: Any = ImageFiles(files, tile=args.tile, image_size=embedder.read_size, scale=scale)
        described = {"inputs": [str(p) for p in args.inputs], "tile": args.tile}
        if args.scale is not None:
            described["scale"] = args.scale
        if args.limit is not None:
            dataset = Subset(dataset, range(min(args.limit, len(dataset))))
        return dataset, described
    from satdifuser.cli.extract import make_dataset

    ns = argparse.Namespace(
        dataset=DATASETS.get(args.dataset, args.dataset),
        root=args.root,
        split=args.split,
        budget=args.budget,
        data_arg=args.data_arg,
        limit=args.limit,
    )
    dataset = make_dataset(ns)
    described = {
        "dataset": args.dataset,
        "root": args.root,
        "split": args.split,
        "budget": args.budget,
        "data_args": list(args.data_arg),
    }
    return dataset, described


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser embed``."""
    args = build_parser().parse_args(argv)
    _check(args)
    import torch

    from satdifuser.embed import export_embeddings

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    embedder, model = make_embedder(args)
    dataset, described = make_input(args, embedder, model)
    print(
        f"embed {len(dataset)} images -> {args.out} ({embedder.representation}, dim "
        f"{embedder.dim}, identity {embedder.identity})",
        file=sys.stderr,
    )
    report = export_embeddings(
        dataset,
        embedder,
        args.out,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=device,
        progress=not args.no_progress,
        description=described,
    )
    geo = f"; GeoParquet, geometry CRS {report.geo_crs}" if report.geo_crs else ""
    print(
        f"wrote {report.rows} embeddings of dim {report.dim} to {report.path} in "
        f"{report.seconds:.1f} s ({report.images_per_second:.2f} img/s){geo}"
    )
    return 0


__all__ = ["DATASETS", "build_parser", "make_embedder", "make_input", "run"]
