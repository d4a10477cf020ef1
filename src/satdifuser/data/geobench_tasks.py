"""The 12 GEO-Bench v1 tasks: benchmark folder, task type, classes, RGB bands and RGB scaling.

Sources: ``shared/docs/geobench.md`` §7 (band lists, sizes, class counts, raw value ranges) and
``shared/docs/method.md`` §2 (SatDiFuser's per-dataset scaling to [0, 1], working size 256/512,
prompts). One deliberate deviation from method.md's table: **m-SA-crop-type** is stored as 8-bit
values (the real sample files have band means 7-99 with 255 as maximum, and TerraTorch's
``m_SA_crop_type.py`` means are 12.7-83.6), so its RGB rule is ``/255`` and not the ``/4095``
method.md infers; ``/4095`` would give images with mean ≈0.01.

Class names here are fallbacks used only when ``task_specs.pkl`` carries none (the real
m-SA-crop-type specs have ``_class_names=None``); their source is given per task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TaskType = Literal["classification", "multilabel", "segmentation"]
ScalingRule = Literal["s2_dn", "s2_reflectance", "uint8", "unit"]

#: Multiplier applied to raw values before clipping to [0, 1], per scaling rule.
SCALING_FACTORS: dict[str, float] = {
    "s2_dn": 1.0 / 4095.0,  # Sentinel-2 L1C digital numbers (12-bit range)
    # reflectance already /10000 (m-so2sat): back to the DN convention, then /4095
    "s2_reflectance": 10000.0 / 4095.0,
    "uint8": 1.0 / 255.0,  # 8-bit imagery
    "unit": 1.0,  # already in [0, 1] (m-chesapeake): clip only
}

S2_RGB: tuple[str, str, str] = ("04 - Red", "03 - Green", "02 - Blue")
AERIAL_RGB: tuple[str, str, str] = ("Red", "Green", "Blue")


@dataclass(frozen=True)
class GeoBenchTaskInfo:
    """Static facts about one GEO-Bench v1 task.

    Attributes:
        name: Task directory name as published (``m-eurosat``).
        benchmark: ``classification_v1.0`` or ``segmentation_v1.0``.
        task_type: ``classification``, ``multilabel`` or ``segmentation``.
        num_classes: Number of classes (K).
        rgb_bands: Band descriptors (or prefixes) for red, green, blue.
        scaling: RGB scaling rule, a key of :data:`SCALING_FACTORS`.
        image_size: SatDiFuser working size (256 or 512; 512 for native sizes above 256).
        prompt: Default text prompt (the released SatDiFuser configs, verbatim, typo included).
        native_size: Published image side in pixels.
        gsd: Native ground sample distance in metres.
        sensor: Short sensor description.
        class_names: Fallback class names (only used when the task specs have none), or None.
        class_names_source: Where the fallback names come from.
        nodata_class: Class index meaning "no data" (not ignored by GEO-Bench), or None.
        split_sizes: Published train/valid/test sizes of the default partition (geobench.md §7).
    """

    name: str
    benchmark: str
    task_type: TaskType
    num_classes: int
    rgb_bands: tuple[str, str, str]
    scaling: ScalingRule
    image_size: int
    prompt: str
    native_size: int
    gsd: float
    sensor: str
    class_names: tuple[str, ...] | None = None
    class_names_source: str = ""
    nodata_class: int | None = None
    split_sizes: tuple[int, int, int] | None = None

    @property
    def scale(self) -> float:
        """Multiplier taking raw values to [0, 1] for the RGB view (before clipping)."""
        return SCALING_FACTORS[self.scaling]


_C = "classification_v1.0"
_S = "segmentation_v1.0"
_SAT = "A satellite image"

GEOBENCH_TASKS: dict[str, GeoBenchTaskInfo] = {
    t.name: t
    for t in (
        GeoBenchTaskInfo(
            "m-eurosat", _C, "classification", 10, S2_RGB, "s2_dn", 256, _SAT, 64, 10.0,
            "Sentinel-2 L1C, 13 bands",
            class_names=(
                "Industrial Buildings", "Residential Buildings", "Annual Crop", "Permanent Crop",
                "River", "Sea and Lake", "Herbaceous Vegetation", "Highway", "Pasture", "Forest",
            ),
            class_names_source="m-eurosat task_specs.pkl (sample files)",
            split_sizes=(2000, 1000, 1000),
        ),
        GeoBenchTaskInfo(
            "m-bigearthnet", _C, "multilabel", 43, S2_RGB, "s2_dn", 256, _SAT, 120, 10.0,
            "Sentinel-2, 12 bands (no cirrus)", split_sizes=(20000, 1000, 1000),
        ),
        GeoBenchTaskInfo(
            "m-so2sat", _C, "classification", 17, S2_RGB, "s2_reflectance", 256, _SAT, 32, 10.0,
            "Sentinel-2 (10 bands, reflectance) + Sentinel-1 (8 bands)",
            split_sizes=(19992, 986, 986),
        ),
        GeoBenchTaskInfo(
            "m-brick-kiln", _C, "classification", 2, S2_RGB, "s2_dn", 256, _SAT, 64, 10.0,
            "Sentinel-2, 13 bands", class_names=("not brick kiln", "brick kiln"),
            class_names_source="legacy brick-kiln task_specs.pkl (sample files)",
            split_sizes=(15063, 999, 999),
        ),
        GeoBenchTaskInfo(
            "m-forestnet", _C, "classification", 12, S2_RGB, "uint8", 512, _SAT, 332, 15.0,
            "Landsat-8, 6 bands, 8-bit, dated descriptors", split_sizes=(6464, 989, 993),
        ),
        GeoBenchTaskInfo(
            "m-pv4ger", _C, "classification", 2, AERIAL_RGB, "uint8", 512, _SAT, 320, 0.1,
            "aerial RGB, 8-bit", split_sizes=(11814, 999, 999),
        ),
        GeoBenchTaskInfo(
            "m-pv4ger-seg", _S, "segmentation", 2, AERIAL_RGB, "uint8", 512, _SAT, 320, 0.1,
            "aerial RGB, 8-bit", split_sizes=(3000, 403, 403),
        ),
        GeoBenchTaskInfo(
            "m-nz-cattle", _S, "segmentation", 2, AERIAL_RGB, "uint8", 512,
            "A satellite image of New Zealand cattles", 500, 0.1, "aerial RGB, 8-bit",
            split_sizes=(524, 66, 65),
        ),
        GeoBenchTaskInfo(
            "m-NeonTree", _S, "segmentation", 2, AERIAL_RGB, "uint8", 512, _SAT, 400, 0.1,
            "aerial RGB 0.1 m + canopy height model + NEON hyperspectral (369 bands, 1 m)",
            split_sizes=(270, 94, 93),
        ),
        GeoBenchTaskInfo(
            "m-cashew-plant", _S, "segmentation", 7, S2_RGB, "s2_dn", 256, _SAT, 256, 10.0,
            "Sentinel-2, 12 bands + cloud probability, dated descriptors",
            class_names=(
                "no data", "well-managed plantation", "poorly-managed plantation", "non-plantation",
                "residential", "background", "uncertain",
            ),
            class_names_source="PANGAEA configs/dataset/mcashew-plantation.yaml",
            nodata_class=0, split_sizes=(1350, 400, 50),
        ),
        GeoBenchTaskInfo(
            "m-SA-crop-type", _S, "segmentation", 10, S2_RGB, "uint8", 256, _SAT, 256, 10.0,
            "Sentinel-2, 12 bands + cloud probability, stored 8-bit",
            class_names=(
                "no data", "Lucerne/Medics", "Planted pastures (perennial)", "Fallow",
                "Wine grapes", "Weeds", "Small grain grazing", "Wheat", "Canola", "Rooibos",
            ),
            class_names_source="PANGAEA configs/dataset/msa-crop-type.yaml",
            nodata_class=0, split_sizes=(3000, 1000, 1000),
        ),
        GeoBenchTaskInfo(
            "m-chesapeake", _S, "segmentation", 7, AERIAL_RGB, "unit", 256,
            "A satellite image of Cheasapeake landcovers", 256, 1.0,
            "NAIP 4 bands, float in [0, 1]",
            class_names=(
                "water", "tree-canopy-forest", "low-vegetation-field", "barren-land",
                "impervious-other", "impervious-roads", "no data",
            ),
            class_names_source="PANGAEA configs/dataset/mchesapeake-landcover.yaml",
            nodata_class=6, split_sizes=(3000, 1000, 1000),
        ),
    )
}

#: task_specs ``dataset_name`` values seen in the real sample files -> task name.
DATASET_NAME_ALIASES: dict[str, str] = {
    "eurosat": "m-eurosat",
    "southafricacroptype": "m-SA-crop-type",
    "brick_kiln_v1.0": "m-brick-kiln",
}


def infer_task_name(dir_name: str, dataset_name: str | None = None) -> str | None:
    """Guess the task from a directory name (``m-eurosat-sample``) or a specs ``dataset_name``.

    Returns the longest task name contained in ``dir_name`` (case-insensitive, the ``m-`` prefix
    optional), else the alias of ``dataset_name``, else None.
    """
    low = dir_name.lower()
    best: str | None = None
    for name in GEOBENCH_TASKS:
        bare = name.lower()[2:]
        hit = name.lower() in low or low.startswith(bare) or f"-{bare}" in low or f"_{bare}" in low
        if hit and (best is None or len(name) > len(best)):
            best = name
    if best is None and dataset_name:
        best = DATASET_NAME_ALIASES.get(dataset_name.lower())
    return best


__all__ = [
    "AERIAL_RGB",
    "DATASET_NAME_ALIASES",
    "GEOBENCH_TASKS",
    "S2_RGB",
    "SCALING_FACTORS",
    "GeoBenchTaskInfo",
    "ScalingRule",
    "TaskType",
    "infer_task_name",
]
