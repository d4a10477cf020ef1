"""A small CNN trained from scratch: the "no pre-training at all" baseline of the benchmarks."""

from __future__ import annotations

from torch import Tensor, nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SmallCNN(nn.Module):
    """Four conv stages (widths ``width * (1, 2, 4, 8)``), global pooling, dropout, linear.

    With ``width=32`` it has about 1.2 M parameters; ``width=16`` about 0.3 M.

    Args:
        num_classes: Output logits.
        width: Channels of the first stage.
        dropout: Dropout before the classifier.
    """

    def __init__(self, num_classes: int, width: int = 32, dropout: float = 0.2) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(_block(3, w), _block(w, 2 * w), _block(2 * w, 4 * w),
                                      _block(4 * w, 8 * w))
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                        nn.Linear(8 * w, num_classes))

    def forward(self, images: Tensor) -> Tensor:
        """Logits (B, num_classes) from images (B, 3, H, W) in [0, 1]."""
        return self.classifier(self.features(images * 2.0 - 1.0))


__all__ = ["SmallCNN"]
