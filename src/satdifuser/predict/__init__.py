"""Apply a trained model to images, folders and GeoTIFF scenes of any size (``satdifuser predict``).

See ``docs/predict.md``. GeoTIFF support needs the ``geo`` extra (``pip install
"satdifuser[geo]"``); rasterio is imported only when a GeoTIFF is read or written.
"""

from satdifuser.predict.blending import BLEND_MODES, weight_1d, weight_window
from satdifuser.predict.classification import predict_classification
from satdifuser.predict.dispatch import PredictResult, expand_inputs, predict
from satdifuser.predict.prepare import default_prepare_raster, make_preparer
from satdifuser.predict.protocol import PredictModel, check_model
from satdifuser.predict.segmentation import predict_segmentation, segment
from satdifuser.predict.stats import PredictStats

__all__ = [
    "BLEND_MODES",
    "PredictModel",
    "PredictResult",
    "PredictStats",
    "check_model",
    "default_prepare_raster",
    "expand_inputs",
    "make_preparer",
    "predict",
    "predict_classification",
    "predict_segmentation",
    "segment",
    "weight_1d",
    "weight_window",
]
