"""Base of data modules that wrap another one and answer for it (cache, views, fit/test pairs)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningDataModule


class WrappingDataModule(LightningDataModule):
    """Forwards the data attributes tasks check (``num_classes``, ``classes``, ``task_type``,
    ``ignore_index``, ``resample``) and any other unknown attribute to ``self.datamodule``.

    Subclasses set ``self.datamodule`` in ``__init__`` (after ``super().__init__()``).
    """

    datamodule: Any

    @property
    def num_classes(self) -> int:
        """Forwarded from the wrapped data module."""
        return int(self.datamodule.num_classes)

    @property
    def classes(self) -> list[str]:
        """Forwarded from the wrapped data module."""
        return list(self.datamodule.classes)

    @property
    def task_type(self) -> str:
        """Forwarded from the wrapped data module."""
        return str(getattr(self.datamodule, "task_type", "classification"))

    @property
    def ignore_index(self) -> int:
        """Forwarded from the wrapped data module."""
        return int(getattr(self.datamodule, "ignore_index", 255))

    @property
    def resample(self) -> float:
        """Forwarded from the wrapped data module (1.0 when it does not resample pixels)."""
        return float(getattr(self.datamodule, "resample", 1.0))

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("datamodule")
        if inner is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(inner, name)

    def prepare_data(self) -> None:
        """Delegate (downloads happen once, on rank 0)."""
        self.datamodule.prepare_data()


__all__ = ["WrappingDataModule"]
