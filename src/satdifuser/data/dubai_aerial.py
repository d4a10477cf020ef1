"""Dubai aerial imagery: a :class:`MaskFolder` preset (colour table, classes, tile layout)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from satdifuser._typing import PathLike, Sample
from satdifuser.data.mask_folder import MaskFolder, TileMode
from satdifuser.errors import ConfigError

DUBAI_CLASSES: tuple[str, ...] = (
    "Building", "Land (unpaved area)", "Road", "Vegetation", "Water", "Unlabeled",
)  # fmt: skip
"""Class names in id order."""

DUBAI_COLORS: tuple[str, ...] = ("#3C1098", "#8429F6", "#6EC1E4", "#FEDD3A", "#E2A929", "#9B9B9B")
"""Mask colour of each class (the mapping that matches the pixels; the release's classes.json
does not)."""

DUBAI_IGNORE_COLORS: tuple[str, ...] = ("#000000",)
"""Stray black pixels: no label."""


class DubaiAerial(MaskFolder):
    """Semantic segmentation of aerial imagery over Dubai (MBRSC satellites, 6 classes).

    Data card:

    - Source: "Semantic segmentation of aerial imagery", MBRSC satellite images annotated by
      Humans in the Loop; open access (listed as CC0 1.0 / public domain).
    - Format: ``tile_N/images/image_part_00K.jpg`` with ``tile_N/masks/image_part_00K.png``
      (RGB colour codes; some tiles are palette PNGs, converted to RGB), 9 images per tile,
      509x544 up to 2149x1480 px.
    - Classes: Building, Land (unpaved area), Road, Vegetation, Water, Unlabeled (colours in
      :data:`DUBAI_COLORS`); black and any other colour -> ``ignore_index``.
    - Splits: by tile (by geography), never by random crop; suggested train tiles 1, 2, 3, 4, 7
      and val tile 8.

    Args:
        root: Data root holding ``dubai_aerial/``, or that folder itself.
        tiles: Tile numbers to use (None: every ``tile_N`` present).
        mode: ``whole`` (evaluation), ``random`` or ``grid`` crops (training).
        crop_size: Crop side for ``random``/``grid``.
        crops_per_image: Random crops per image per epoch.
        stride: Grid step (default ``crop_size``).
        ignore_index: Mask value for unlabelled pixels.
        cache: Keep decoded images and masks in memory.
        transforms: Callable applied to each sample dict.

    .. versionadded:: 0.1
    """

    folder_name: ClassVar[str] = "dubai_aerial"

    def __init__(
        self,
        root: PathLike | None = None,
        tiles: list[int] | None = None,
        mode: TileMode = "whole",
        crop_size: int | None = None,
        crops_per_image: int = 1,
        stride: int | None = None,
        ignore_index: int = 255,
        cache: bool = False,
        transforms: Callable[[Sample], Sample] | None = None,
    ) -> None:
        if tiles is not None and not tiles:
            raise ConfigError("tiles=[] selects no tile; pass tile numbers, e.g. [1, 2, 3, 4, 7]")
        super().__init__(
            root=root,
            groups=None if tiles is None else [f"tile_{t}" for t in tiles],
            classes=list(DUBAI_CLASSES),
            colors=list(DUBAI_COLORS),
            ignore_colors=list(DUBAI_IGNORE_COLORS),
            ignore_index=ignore_index,
            mode=mode,
            crop_size=crop_size,
            crops_per_image=crops_per_image,
            stride=stride,
            cache=cache,
            transforms=transforms,
        )
        self.tiles = tiles


__all__ = ["DUBAI_CLASSES", "DUBAI_COLORS", "DUBAI_IGNORE_COLORS", "DubaiAerial"]
