"""The provider registers through the plugin's entry point and describes its algorithms."""

from qgis.core import QgsApplication

EXPECTED = {
    "mocolsk:downscalelst": "Downscale LST",
    "mocolsk:evaluate": "Evaluate downscaled LST",
    "mocolsk:buildguidance": "Build guidance stack",
    "mocolsk:finetune": "Fine-tune on this scene",
}


def test_provider_registers_its_four_algorithms_with_names_and_icon(mocolsk_provider):
    assert mocolsk_provider.id() == "mocolsk"
    assert "MoCoLSK" in mocolsk_provider.name()
    assert not mocolsk_provider.icon().isNull()
    registry = QgsApplication.processingRegistry()
    for algorithm_id, display_name in EXPECTED.items():
        algorithm = registry.algorithmById(algorithm_id)
        assert algorithm is not None, algorithm_id
        assert algorithm.displayName() == display_name
        assert not algorithm.icon().isNull()


def test_every_parameter_has_help_and_every_algorithm_a_help_string(mocolsk_provider):
    registry = QgsApplication.processingRegistry()
    for algorithm_id in EXPECTED:
        algorithm = registry.algorithmById(algorithm_id)
        assert len(algorithm.shortHelpString()) > 200, algorithm_id
        for parameter in algorithm.parameterDefinitions():
            assert len(parameter.help()) > 20, f"{algorithm_id} {parameter.name()} has no help"


def test_downscale_help_states_the_plausible_range_the_engine_accepts(mocolsk_provider):
    help_text = QgsApplication.processingRegistry().algorithmById("mocolsk:downscalelst").shortHelpString()
    assert "must lie in 149-400 K" in help_text


def test_downscale_help_steers_to_the_method_each_bundled_card_recommends(mocolsk_provider):
    import json

    from tests.conftest import REPO

    help_text = QgsApplication.processingRegistry().algorithmById("mocolsk:downscalelst").shortHelpString()
    assert "Which method?" in help_text
    for card_path in sorted((REPO / "resources" / "models").glob("mocolsk-*.json")):
        card = json.loads(card_path.read_text())
        unseen = card["metrics"]["unseen_scenes"]["native"]
        blend = unseen["methods"]["blend"]["rmse_k"]
        assert (
            f"x{card['scale']} ({card['name']}): RMSE on {len(unseen['scenes'])} real scenes the network never "
            f"saw (native-resolution truth: the blend {blend:.2f} K" in help_text
        )
        assert card["metrics"]["recommended_method"] == "blend"
        assert f"recommended at x{card['scale']}: the blend" in help_text


def test_downscale_offers_the_units_methods_and_devices_of_the_issue(mocolsk_provider):
    algorithm = QgsApplication.processingRegistry().algorithmById("mocolsk:downscalelst")
    units = " ".join(algorithm.parameterDefinition("LST_UNITS").options())
    for name in ("Auto", "Kelvin", "Celsius", "Landsat 8/9 Collection 2 Level-2", "MODIS"):
        assert name in units
    methods = " ".join(algorithm.parameterDefinition("METHOD").options())
    for name in ("MoCoLSK", "Bicubic", "TsHARP", "DMS"):
        assert name in methods
    assert algorithm.parameterDefinition("DEVICE").options() == [
        "Auto (GPU if available)",
        "CPU",
        "GPU (CUDA)",
    ]
    assert algorithm.parameterDefinition("CONSERVE_COARSE_MEANS").defaultValue() is True
    advanced = {p.name() for p in algorithm.parameterDefinitions() if p.flags() & p.FlagAdvanced}
    assert {"TILE_SIZE", "THREADS", "QA_MASK_GROW_PX", "NATIVE_PIXEL_M"} <= advanced


def test_unloading_the_plugin_removes_the_provider(qgis_iface, mocolsk_provider):
    import mocolsk_qgis

    second = mocolsk_qgis.classFactory(qgis_iface)
    registry = QgsApplication.processingRegistry()
    second.initProcessing()
    providers = [p for p in registry.providers() if p.id() == "mocolsk"]
    assert len(providers) == 1  # the registry refuses a second provider with the same id
    second.unload()
    assert registry.providerById("mocolsk") is mocolsk_provider


def test_dialog_choices_are_exactly_the_engines_options():
    from engine import backends, masks, pipeline, units
    from mocolsk_qgis.algorithms import downscale

    def values(pairs):
        return {value for value, _ in pairs}

    assert values(downscale.LST_UNIT_CHOICES) == set(units.LST_UNITS)
    assert values(downscale.METHODS) == set(pipeline.METHODS)
    assert values(downscale.DEVICES) == set(backends.DEVICES)
    assert values(downscale.BACKENDS) == set(backends.BACKENDS)
    assert values(downscale.OUTPUT_UNIT_CHOICES) == set(units.OUTPUT_UNITS)
    assert values(downscale.QA_MASK_KINDS) == set(masks.QA_MASK_KINDS)


def test_help_pages_are_read_from_resources_help(mocolsk_provider):
    from tests.conftest import REPO

    registry = QgsApplication.processingRegistry()
    for algorithm_id in (
        "mocolsk:downscalelst",
        "mocolsk:buildguidance",
        "mocolsk:evaluate",
        "mocolsk:finetune",
    ):
        page = REPO / "resources" / "help" / f"{algorithm_id.split(':')[1]}.html"
        first_paragraph = page.read_text(encoding="utf-8").split("</p>")[0]
        assert first_paragraph in registry.algorithmById(algorithm_id).shortHelpString()


def test_downscale_help_and_model_label_match_what_the_dialog_offers(mocolsk_provider):
    import json

    from tests.conftest import REPO

    algorithm = QgsApplication.processingRegistry().algorithmById("mocolsk:downscalelst")
    help_text = algorithm.shortHelpString()
    for cue in ("Landsat 4/5 TM band 6 digital numbers", "ST_B10", "MOD11/MYD11", "Landsat Level-1", "°C"):
        assert cue in help_text, cue
    assert "{" not in help_text  # every placeholder filled
    assert algorithm.parameterDefinition("MODEL").description() == "Model (auto: by pixel ratio)"
    for card_path in sorted((REPO / "resources" / "models").glob("mocolsk-*.json")):
        card = json.loads(card_path.read_text())
        assert f"x{card['scale']}: {card['name']}" in help_text


def test_guidance_help_names_both_landsat_sources(mocolsk_provider):
    help_text = QgsApplication.processingRegistry().algorithmById("mocolsk:buildguidance").shortHelpString()
    assert "Level-1" in help_text and "MTL" in help_text and "Level-2 surface reflectance" in help_text
