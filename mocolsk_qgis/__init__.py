"""MoCoLSK for QGIS: downscale land surface temperature with fine-resolution guidance."""

from .install_runtime import activate

# Runtimes installed by the plugin (ONNX Runtime, PyTorch) live in a folder of their own.
activate()


def classFactory(iface):  # noqa: N802 (name required by QGIS)
    from .plugin import MoCoLSKPlugin

    return MoCoLSKPlugin(iface)
