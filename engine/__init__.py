"""MoCoLSK inference engine: downscale coarse land surface temperature with fine guidance.

Importing the package is cheap: torch, onnxruntime and GDAL load only in the modules that
need them, so the engine runs inside QGIS with onnxruntime alone.
"""

__version__ = "0.4.0"
