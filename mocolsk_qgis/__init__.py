"""MoCoLSK for QGIS: downscale land surface temperature with fine-resolution guidance."""


def classFactory(iface):  # noqa: N802 (name required by QGIS)
    from .plugin import MoCoLSKPlugin

    return MoCoLSKPlugin(iface)
