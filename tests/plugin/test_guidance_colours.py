"""Guidance stacks show natural colour: their red, green and blue bands (by description) as R, G, B,
whether Build guidance loads them or the user adds them; colours someone chose are kept."""

import processing
from qgis.core import QgsMultiBandColorRenderer, QgsProject, QgsRasterLayer

from tests.conftest import TINY_BANDS

NATURAL = tuple(TINY_BANDS.index(colour) + 1 for colour in ("red", "green", "blue"))


def shown_bands(layer):
    renderer = layer.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    return renderer.redBand(), renderer.greenBand(), renderer.blueBand()


def test_build_guidance_output_loads_as_red_green_blue(
    mocolsk_provider, sample_scene, tiny_package_x4, tmp_path
):
    parameters = {name.upper(): str(path) for name, path in sample_scene.sr_bands.items()}
    output = tmp_path / "guidance.tif"
    processing.runAndLoadResults(
        "mocolsk:buildguidance",
        {**parameters, "MODEL_FILE": str(tiny_package_x4.card_path), "OUTPUT": str(output)},
    )
    try:
        loaded = [
            layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == str(output)
        ]
        assert len(loaded) == 1
        assert shown_bands(loaded[0]) == NATURAL
        assert loaded[0].renderer().redContrastEnhancement() is not None  # stretched, not raw reflectance
    finally:
        QgsProject.instance().removeAllMapLayers()


def test_a_guidance_stack_added_to_the_project_shows_natural_colour(mocolsk_provider, sample_scene):
    layer = QgsRasterLayer(str(sample_scene.guidance_30m), "guidance")
    assert shown_bands(layer) == (1, 2, 3)  # QGIS's default: blue, green, red, false colour
    QgsProject.instance().addMapLayer(layer)
    try:
        assert shown_bands(layer) == NATURAL
    finally:
        QgsProject.instance().removeAllMapLayers()


def test_colours_someone_chose_are_kept(mocolsk_provider, sample_scene):
    layer = QgsRasterLayer(str(sample_scene.guidance_30m), "guidance")
    layer.setRenderer(QgsMultiBandColorRenderer(layer.dataProvider(), 4, 3, 2))
    QgsProject.instance().addMapLayer(layer)
    try:
        assert shown_bands(layer) == (4, 3, 2)
    finally:
        QgsProject.instance().removeAllMapLayers()
