"""The plugin's one translation helper: every user-visible string goes through ``tr``, in one context."""

from qgis.PyQt.QtCore import QCoreApplication

# The translation context of every user-visible string of the plugin (Qt Linguist groups by it).
TR_CONTEXT = "MoCoLSK"


def tr(text: str) -> str:
    """``text`` in the user's QGIS language when a translation is installed."""
    return QCoreApplication.translate(TR_CONTEXT, text)
