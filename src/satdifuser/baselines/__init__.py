"""Non-diffusion baselines that share the extractor contract (``feature_info`` + ``forward``)."""

from satdifuser.baselines.efficientnet_lite import EfficientNetLiteExtractor
from satdifuser.baselines.small_cnn import SmallCNN

__all__ = ["EfficientNetLiteExtractor", "SmallCNN"]
