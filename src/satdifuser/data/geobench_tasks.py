"""The 12 GEO-Bench v1 tasks: benchmark folder, task type, classes, RGB bands and RGB scaling.

Sources: ``shared/docs/geobench.md`` §7 (band lists, sizes, class counts, raw value ranges) and
``shared/docs/method.md`` §2 (SatDiFuser's per-dataset scaling to [0, 1], working size 256/512,
prompts). One deliberate deviation from method.md's table: **m-SA-crop-type** is stored as 8-bit
values (the real sample files have band means 7-99 with 255 as maximum, and TerraTorch's
``m_SA_crop_type.py`` means are 12.7-83.6), so its RGB rule is ``/255`` and not the ``/4095``
method.md infers; ``/4095`` would give images with mean ≈0.01.

Class tables (``docs/geobench_classes.md`` has the evidence per task). A table marked
``class_names_verified`` was checked against the label values of real files and the image content
and is used even when ``task_specs.pkl`` names classes: the real m-eurosat specs list the names in
the EuroSAT paper's order, but the labels are torchvision ``ImageFolder`` indices (alphabetical
folder order; the five sample files labelled 0 are EuroSAT ``AnnualCrop`` images, not "Industrial
Buildings"); m-chesapeake labels are the Chesapeake CVPR land-cover values (0 no data, 1 water ...
6 roads), one above the converter's ``LABELS`` tuple, which ends in "no-data". Other tables are
fallbacks used only when the specs carry no names (the real m-SA-crop-type specs have
``_class_names=None``).
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
        class_names_verified: ``class_names`` were checked against real files and override the
            names in ``task_specs.pkl`` (which are wrong for these tasks).
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
    class_names_verified: bool = False

    @property
    def scale(self) -> float:
        """Multiplier taking raw values to [0, 1] for the RGB view (before clipping)."""
        return SCALING_FACTORS[self.scaling]


#: m-eurosat classes in label order: the EuroSAT folders sorted alphabetically (AnnualCrop,
#: Forest, HerbaceousVegetation, Highway, Industrial, Pasture, PermanentCrop, Residential, River,
#: SeaLake), named as in the task specs.
EUROSAT_LABEL_ORDER: tuple[str, ...] = (
    "Annual Crop", "Forest", "Herbaceous Vegetation", "Highway", "Industrial Buildings",
    "Pasture", "Permanent Crop", "Residential Buildings", "River", "Sea and Lake",
)  # fmt: skip
_CONVERTER = "GEO-Bench converter {} (specs name them too)"
_C = "classification_v1.0"
_S = "segmentation_v1.0"
_SAT = "A satellite image"

GEOBENCH_TASKS: dict[str, GeoBenchTaskInfo] = {
    t.name: t
    for t in (
        GeoBenchTaskInfo(
            "m-eurosat", _C, "classification", 10, S2_RGB, "s2_dn", 256, _SAT, 64, 10.0,
            "Sentinel-2 L1C, 13 bands",
            class_names=EUROSAT_LABEL_ORDER,
            class_names_source="verified: label = EuroSAT folder index in alphabetical order "
            "(docs/geobench_classes.md); the task_specs.pkl names are in the paper's order",
            split_sizes=(2000, 1000, 1000), class_names_verified=True,
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
            class_names_source="brick-kiln task_specs.pkl; label_map 67,284 x 0 / 6,329 x 1 "
            "(docs/geobench_classes.md)",
            split_sizes=(15063, 999, 999),
        ),
        GeoBenchTaskInfo(
            "m-forestnet", _C, "classification", 12, S2_RGB, "uint8", 512, _SAT, 332, 15.0,
            "Landsat-8, 6 bands, 8-bit, dated descriptors", split_sizes=(6464, 989, 993),
        ),
        GeoBenchTaskInfo(
            "m-pv4ger", _C, "classification", 2, AERIAL_RGB, "uint8", 512, _SAT, 320, 0.1,
            "aerial RGB, 8-bit", class_names=("no solar pv", "solar pv"),
            class_names_source=_CONVERTER.format("pv4ger.py LABELS"),
            split_sizes=(11814, 999, 999),
        ),
        GeoBenchTaskInfo(
            "m-pv4ger-seg", _S, "segmentation", 2, AERIAL_RGB, "uint8", 512, _SAT, 320, 0.1,
            "aerial RGB, 8-bit", class_names=("no solar pv", "solar pv"),
            class_names_source=_CONVERTER.format("pv4ger.py LABELS (mask > 0 -> 1)"),
            split_sizes=(3000, 403, 403),
        ),
        GeoBenchTaskInfo(
            "m-nz-cattle", _S, "segmentation", 2, AERIAL_RGB, "uint8", 512,
            "A satellite image of New Zealand cattles", 500, 0.1, "aerial RGB, 8-bit",
            class_names=("no cattle", "cattle"),
            class_names_source=_CONVERTER.format("nz_cattle_detection.py"),
            split_sizes=(524, 66, 65),
        ),
        GeoBenchTaskInfo(
            "m-NeonTree", _S, "segmentation", 2, AERIAL_RGB, "uint8", 512, _SAT, 400, 0.1,
            "aerial RGB 0.1 m + canopy height model + NEON hyperspectral (369 bands, 1 m)",
            class_names=("no tree", "tree"),
            class_names_source=_CONVERTER.format("neon_tree.py"),
            split_sizes=(270, 94, 93),
        ),
        GeoBenchTaskInfo(
            "m-cashew-plant", _S, "segmentation", 7, S2_RGB, "s2_dn", 256, _SAT, 256, 10.0,
            "Sentinel-2, 12 bands + cloud probability, dated descriptors",
            class_names=(
                "no data", "well-managed plantation", "poorly-managed plantation", "non-plantation",
                "residential", "background", "uncertain",
            ),
            class_names_source="GEO-Bench converter benin_smallholder_cashews.py LABELS "
            "(= PANGAEA mcashew-plantation.yaml; mask values as rasterised by TorchGeo)",
            nodata_class=0, split_sizes=(1350, 400, 50),
        ),
        GeoBenchTaskInfo(
            "m-SA-crop-type", _S, "segmentation", 10, S2_RGB, "uint8", 256, _SAT, 256, 10.0,
            "Sentinel-2, 12 bands + cloud probability, stored 8-bit",
            class_names=(
                "no data", "Lucerne/Medics", "Planted pastures (perennial)", "Fallow",
                "Wine grapes", "Weeds", "Small grain grazing", "Wheat", "Canola", "Rooibos",
            ),
            class_names_source="GEO-Bench converter crop_type_south_africa.py crop_labels "
            "(raw labels.tif values; 0 = unlabelled land in the sample files)",
            nodata_class=0, split_sizes=(3000, 1000, 1000),
        ),
        GeoBenchTaskInfo(
            "m-chesapeake", _S, "segmentation", 7, AERIAL_RGB, "unit", 256,
            "A satellite image of Cheasapeake landcovers", 256, 1.0,
            "NAIP 4 bands, float in [0, 1]",
            class_names=(
                "no data", "water", "tree-canopy-forest", "low-vegetation-field", "barren-land",
                "impervious-other", "impervious-roads",
            ),
            class_names_source="verified: Chesapeake CVPR land-cover values 1..6, 0 unused "
            "(docs/geobench_classes.md); PANGAEA and the converter list them shifted by one",
            nodata_class=0, split_sizes=(3000, 1000, 1000), class_names_verified=True,
        ),
    )
}

#: task_specs ``dataset_name`` values seen in the real sample files -> task name.
DATASET_NAME_ALIASES: dict[str, str] = {
    "eurosat": "m-eurosat",
    "southafricacroptype": "m-SA-crop-type",
    "brick_kiln_v1.0": "m-brick-kiln",
}


def class_table(
    info: GeoBenchTaskInfo, specs_names: object, num_classes: int
) -> tuple[list[str], str]:
    """Class names of a task and where they come from.

    Order: the verified table of ``info`` (overrides the specs), the names in ``task_specs.pkl``
    (``specs_names``, when there is one per class), the fallback table of ``info``, generic names.
    """
    table = info.class_names
    if info.class_names_verified and table and len(table) == num_classes:
        source = info.class_names_source
        if isinstance(specs_names, (list, tuple)) and list(specs_names) != list(table):
            source += " (task_specs.pkl names overridden)"
        return list(table), source
    if isinstance(specs_names, (list, tuple)) and len(specs_names) == num_classes:
        return [str(c) for c in specs_names], "task_specs.pkl"
    if table and len(table) == num_classes:
        return list(table), info.class_names_source
    return [f"class_{i}" for i in range(num_classes)], "generic (no names in task_specs.pkl)"


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
    "EUROSAT_LABEL_ORDER",
    "GEOBENCH_TASKS",
    "S2_RGB",
    "SCALING_FACTORS",
    "GeoBenchTaskInfo",
    "ScalingRule",
    "TaskType",
    "class_table",
    "infer_task_name",
]
