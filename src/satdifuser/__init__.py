"""satdifuser: frozen generative diffusion models as discriminative geospatial feature extractors.

Implements SatDiFuser (Jia et al., "Can Generative Geospatial Diffusion Models Excel as
Discriminative Geospatial Foundation Models?", ICCV 2025, arXiv 2503.07890) and goes beyond it.

The package reads as the pipeline: ``data`` -> ``backbones`` -> ``features`` (+cache) ->
``fusion`` -> ``heads`` -> ``tasks`` -> ``cli``. Importing it has no side effects.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
