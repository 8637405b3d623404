"""Processing algorithm "Downscale LST": parameters in, one engine call, feedback out."""

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsRasterLayer,
    QgsUnitTypes,
)

from .._engine import engine_module
from ..downscale_dialog import AUTO_LABEL, downscale_dialog
from ..style import style_on_load
from .common import (
    LST_UNIT_CHOICES,
    MoCoLSKAlgorithm,
    RasterDestination,
    auto_models_text,
    bundled_accuracy_help,
    chosen_model,
    file_path,
    help_html,
    load_engine_module,
    model_parameters,
    releases_layers_on_error,
    run_engine,
    runtime_description,
    spec,
    tr,
    unloadable_layer_error,
)

_units = engine_module("units")
# (engine value, label) pairs; Processing stores the index, the engine wants the value.
METHODS = (
    ("mocolsk", "MoCoLSK-Net"),
    ("bicubic", "Bicubic"),
    ("tsharp", "TsHARP"),
    ("dms", "DMS"),
    ("auto", "Auto (self-check)"),
    ("blend", "Blend"),
)
METHOD_NAMES = {
    "mocolsk": "MoCoLSK",
    "blend": "MoCoLSK blend",
    "bicubic": "bicubic",
    "tsharp": "TsHARP",
    "dms": "DMS",
}
# The most accurate method on unseen scenes (README, Accuracy).
DEFAULT_METHOD = "blend"
# Methods that run a model package (its Model and Model file parameters apply).
NETWORK_METHODS = ("mocolsk", "blend", "auto")
DEVICES = (("auto", "Auto (GPU if available)"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)"))
BACKENDS = (("onnxruntime", "ONNX Runtime"), ("torch", "PyTorch"))
OUTPUT_UNIT_CHOICES = (("kelvin", "Kelvin"), ("celsius", "Celsius"))
UNIT_SYMBOLS = {"kelvin": "K", "celsius": "°C"}
QA_MASK_KINDS = (
    ("auto", "Auto (Landsat QA_PIXEL or MODIS/VIIRS QC by name, else non-zero)"),
    ("nonzero", "Any non-zero value is masked"),
    ("landsat_qa_pixel", "Landsat Collection 2 QA_PIXEL bits (fill, cloud, shadow, cirrus)"),
    ("modis_qc", "MODIS/VIIRS LST QC bits (masked where LST was not produced)"),
)
# The Model tooltip's words on "auto" (the engine's auto_model decides; the dialog's Model label says what).
AUTO_MODEL_HELP = (
    "auto (the default) uses the bundled model whose scale matches the pixel ratio, e.g. x4 for a "
    "120 m LST with 30 m guidance; the log says which. "
)
# Outputs besides the rasters: (class, name, label).
OUTPUTS = (
    (QgsProcessingOutputNumber, "SCALE", "Scale factor"),
    (QgsProcessingOutputNumber, "MAX_CONSERVATION_RESIDUAL_K", "Largest coarse-pixel residual (K)"),
    (QgsProcessingOutputString, "LST_UNITS_USED", "LST units used"),
    (QgsProcessingOutputString, "DEVICE_USED", "Device used"),
)


class DownscaleAlgorithm(MoCoLSKAlgorithm):
    INPUT_LST = "INPUT_LST"
    LST_BAND = "LST_BAND"
    LST_UNITS = "LST_UNITS"
    NATIVE_PIXEL = "NATIVE_PIXEL_M"
    GUIDANCE = "GUIDANCE"
    METHOD = "METHOD"
    DEVICE = "DEVICE"
    CONSERVE = "CONSERVE_COARSE_MEANS"
    OUTPUT_UNITS = "OUTPUT_UNITS"
    GUIDANCE_BAND_NAMES = "GUIDANCE_BAND_NAMES"
    QA_MASK = "QA_MASK"
    QA_MASK_KIND = "QA_MASK_KIND"
    QA_MASK_GROW = "QA_MASK_GROW_PX"
    BACKEND = "BACKEND"
    TILE_SIZE = "TILE_SIZE"
    THREADS = "THREADS"
    COG = "COG"
    OUTPUT = "OUTPUT"
    UNCERTAINTY = "UNCERTAINTY"

    # The parameters before Model, in the dialog's order.
    LAYER_PARAMETERS = (
        spec(
            QgsProcessingParameterRasterLayer,
            INPUT_LST,
            "Coarse LST layer",
            "The coarse land surface temperature raster to downscale (e.g. 120 m or 1 km).",
        ),
        spec(
            QgsProcessingParameterBand,
            LST_BAND,
            "LST band",
            "The band of the LST layer that holds the temperature (band 1 when not set).",
            defaultValue=1,
            parentLayerParameterName=INPUT_LST,
            optional=True,
        ),
        spec(
            QgsProcessingParameterEnum,
            LST_UNITS,
            "LST units",
            "How to read the LST values. Auto-detect uses the product named in the file name, band or "
            "metadata, the band's unit and the value range; choose explicitly when the log shows a "
            "wrong guess.",
            choices=LST_UNIT_CHOICES,
            defaultValue=0,
        ),
        spec(
            QgsProcessingParameterNumber,
            NATIVE_PIXEL,
            "Native LST pixel (m, 0 = from the product name or MTL)",
            "The pixel the LST's sensor saw, when the LST was delivered on a finer grid: Landsat 8/9 "
            "ST_B10 lies on the 30 m grid but TIRS sensed 100 m (ETM+ 60 m, TM 120 m). The LST is then "
            "averaged onto the coarse grid of the scale that fits that pixel before downscaling. 0 reads it "
            "from a Landsat product name (LC08_..., LE07_..., LT05_...) or the MTL beside the file.",
            advanced=True,
            type=QgsProcessingParameterNumber.Double,
            defaultValue=0.0,
            optional=True,
            minValue=0.0,
            maxValue=100000.0,
        ),
        spec(
            QgsProcessingParameterMultipleLayers,
            GUIDANCE,
            "Guidance layers (fine grid)",
            "Fine-resolution guidance on one grid, which becomes the output grid: several "
            "single-band layers or one multiband layer. Bands are matched to the method's "
            "needs by their descriptions.",
            layerType=QgsProcessing.TypeRaster,
        ),
        spec(
            QgsProcessingParameterEnum,
            METHOD,
            "Method",
            "The blend (default) averages MoCoLSK-Net with TsHARP, DMS and bicubic using weights "
            "cross-validated on scenes the network never saw: on every such scene it was at least as "
            "accurate as the best classic method. MoCoLSK-Net: the deep network alone. Bicubic: "
            "interpolation, ignores the guidance. TsHARP: regression on NDVI. DMS: regression trees on "
            "all guidance bands. Auto: the method that best rebuilds this LST from a once-more coarsened "
            "copy. MoCoLSK-Net, the blend and auto need a model package; bicubic, TsHARP and DMS need "
            "none.",
            choices=METHODS,
            defaultValue=[value for value, _ in METHODS].index(DEFAULT_METHOD),
        ),
    )
    # The parameters after Model and Model package file; the Device label says what auto runs on here.
    RUN_PARAMETERS = (
        spec(
            QgsProcessingParameterEnum,
            DEVICE,
            "Device (auto here: {runtime})",
            "Where the network runs. Auto uses a GPU when the backend finds one and says "
            "which device it used; GPU fails with an explanation instead of falling back "
            "silently.",
            choices=DEVICES,
            defaultValue=0,
        ),
        spec(
            QgsProcessingParameterBoolean,
            CONSERVE,
            "Conserve coarse-pixel means",
            "Correct the result so that its average over each coarse pixel equals the input LST.",
            defaultValue=True,
        ),
        spec(
            QgsProcessingParameterEnum,
            OUTPUT_UNITS,
            "Output units",
            "Units of the output raster; the loaded layer's legend uses them too.",
            choices=OUTPUT_UNIT_CHOICES,
            defaultValue=0,
        ),
        spec(
            QgsProcessingParameterString,
            GUIDANCE_BAND_NAMES,
            "Guidance band names (comma separated, for unnamed bands)",
            "One name per guidance band in the order given, e.g. "
            "blue,green,red,nir,swir1,swir2; needed only when the bands have no descriptions.",
            advanced=True,
            optional=True,
        ),
        spec(
            QgsProcessingParameterRasterLayer,
            QA_MASK,
            "Cloud/QA mask on the LST grid",
            "Optional raster on the LST's grid marking pixels to ignore (e.g. Landsat QA_PIXEL).",
            advanced=True,
            optional=True,
        ),
        spec(
            QgsProcessingParameterEnum,
            QA_MASK_KIND,
            "QA mask kind",
            "How the QA mask marks bad pixels.",
            choices=QA_MASK_KINDS,
            advanced=True,
            defaultValue=0,
        ),
        spec(
            QgsProcessingParameterNumber,
            QA_MASK_GROW,
            "Grow the QA mask by (LST pixels)",
            "Also mask the LST pixels within this many pixels of a masked one. Cloud edges "
            "and thin cirrus that the QA band misses spoil the network's result near clouds; "
            "2-8 px is typical for Landsat. Needs a QA mask.",
            advanced=True,
            defaultValue=0,
            minValue=0,
            maxValue=50,
        ),
        spec(
            QgsProcessingParameterEnum,
            BACKEND,
            "Inference backend",
            "ONNX Runtime needs only the onnxruntime package; PyTorch needs torch and the "
            "package's .pt weights.",
            choices=BACKENDS,
            advanced=True,
            defaultValue=0,
        ),
        spec(
            QgsProcessingParameterNumber,
            TILE_SIZE,
            "Tile size (fine pixels)",
            "Side of the square tiles the scene is processed in; larger tiles are faster but "
            "need more memory.",
            advanced=True,
            defaultValue=512,
            minValue=16,
            maxValue=8192,
        ),
        spec(
            QgsProcessingParameterNumber,
            THREADS,
            "CPU threads (0 = backend default)",
            "Threads the CPU backend may use.",
            advanced=True,
            defaultValue=0,
            minValue=0,
            maxValue=256,
        ),
        spec(
            QgsProcessingParameterBoolean,
            COG,
            "Write a Cloud Optimized GeoTIFF",
            "Write the output as a COG with overviews.",
            advanced=True,
            defaultValue=False,
        ),
        spec(RasterDestination, OUTPUT, "Downscaled LST", "GeoTIFF on the guidance grid with nodata -9999."),
        spec(
            QgsProcessingParameterRasterDestination,
            UNCERTAINTY,
            "Uncertainty (K)",
            "Optional per-pixel uncertainty in Kelvin (MoCoLSK and DMS); the README gives how often "
            "errors fall within it.",
            optional=True,
            createByDefault=False,
        ),
    )

    def name(self):
        return "downscalelst"

    def displayName(self):  # noqa: N802
        return self.tr("Downscale LST")

    def shortHelpString(self):  # noqa: N802
        return (
            help_html(
                self.name(),
                low_kelvin=f"{_units.PLAUSIBLE_MIN_KELVIN:.0f}",
                high_kelvin=f"{_units.PLAUSIBLE_MAX_KELVIN:.0f}",
                auto_models=auto_models_text(),
            )
            + bundled_accuracy_help()
        )

    def createCustomParametersWidget(self, parent=None):  # noqa: N802 (QGIS API)
        """The standard dialog, whose Model label says which bundled package auto runs for the chosen layers."""
        return downscale_dialog(self, parent)

    def tags(self):
        return [
            "lst",
            "land surface temperature",
            "downscaling",
            "super-resolution",
            "thermal",
            "sharpening",
            "mocolsk",
        ]

    def initAlgorithm(self, config=None):  # noqa: N802
        for parameter in self.LAYER_PARAMETERS:
            self.addParameter(parameter.build())
        for parameter in model_parameters(self.tr(AUTO_LABEL), self.tr(AUTO_MODEL_HELP)):
            self.addParameter(parameter)
        runtime = runtime_description()
        for parameter in self.RUN_PARAMETERS:
            self.addParameter(parameter.build(runtime=runtime))
        for kind, name, label in OUTPUTS:
            self.addOutput(kind(name, self.tr(label)))

    @releases_layers_on_error
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        pipeline = load_engine_module("pipeline")
        method = METHODS[self.parameterAsEnum(parameters, self.METHOD, context)][0]
        names = self.parameterAsString(parameters, self.GUIDANCE_BAND_NAMES, context)
        qa_mask = self.parameterAsRasterLayer(parameters, self.QA_MASK, context)
        if qa_mask is None and parameters.get(self.QA_MASK):
            raise unloadable_layer_error("QA mask", parameters[self.QA_MASK])
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        uncertainty = self.parameterAsOutputLayer(parameters, self.UNCERTAINTY, context) or None
        guidance = self.guidance_layers(parameters, context)
        lst_path = file_path(
            self.parameterAsRasterLayer(parameters, self.INPUT_LST, context),
            "LST",
            parameters.get(self.INPUT_LST),
        )
        refuse_guidance_as_lst(lst_path, guidance)
        request = pipeline.DownscaleRequest(
            lst_path=lst_path,
            lst_band=self.parameterAsInt(parameters, self.LST_BAND, context),
            lst_units=LST_UNIT_CHOICES[self.parameterAsEnum(parameters, self.LST_UNITS, context)][0],
            guidance_paths=[file_path(layer, "guidance") for layer in guidance],
            guidance_band_names=[name.strip() for name in names.split(",")] if names.strip() else None,
            qa_mask_path=file_path(qa_mask, "QA mask") if qa_mask else None,
            qa_mask_kind=QA_MASK_KINDS[self.parameterAsEnum(parameters, self.QA_MASK_KIND, context)][0],
            qa_mask_grow_px=self.parameterAsInt(parameters, self.QA_MASK_GROW, context),
            native_pixel_m=self.parameterAsDouble(parameters, self.NATIVE_PIXEL, context) or None,
            method=method,
            model=chosen_model(self, parameters, context, auto=True) if method in NETWORK_METHODS else None,
            backend=BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)][0],
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)][0],
            threads=self.parameterAsInt(parameters, self.THREADS, context) or None,
            tile_size_px=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            conserve_coarse_means=self.parameterAsBoolean(parameters, self.CONSERVE, context),
            output_units=OUTPUT_UNIT_CHOICES[self.parameterAsEnum(parameters, self.OUTPUT_UNITS, context)][0],
            output_path=output,
            overwrite=True,
            cog=self.parameterAsBoolean(parameters, self.COG, context),
            uncertainty_path=uncertainty,
        )
        result = run_engine(feedback, pipeline.downscale_scene, request)
        feedback.pushInfo(
            self.tr(
                "Done: x{scale} with {method} on {device}, {tiles} tile(s); LST read as {units} ({reason})."
            ).format(
                scale=result.scale,
                method=f"{result.method}{' ' + result.model_name if result.model_name else ''}",
                device=result.device,
                tiles=result.tiles,
                units=_units.UNIT_LABELS.get(result.lst_units, result.lst_units),
                reason=result.lst_units_reason,
            )
        )
        style_on_load(context, output, request.output_units)
        if result.self_check:
            feedback.pushInfo(self.tr("Auto chose {choice}").format(choice=result.self_check))
        method_name = result_method_name(result.method, result.blend_members)
        name_on_load(
            context, output, result_layer_name(guidance[0], method_name, result.scale, request.output_units)
        )
        if uncertainty:
            style_on_load(context, uncertainty, "uncertainty")
            name_on_load(context, uncertainty, f"Uncertainty, {method_name} x{result.scale} (K)")
        return {
            self.OUTPUT: output,
            self.UNCERTAINTY: uncertainty,
            "SCALE": result.scale,
            "MAX_CONSERVATION_RESIDUAL_K": result.max_conservation_residual_k,
            "LST_UNITS_USED": result.lst_units,
            "DEVICE_USED": result.device,
        }

    def guidance_layers(self, parameters, context):
        layers = self.parameterAsLayerList(parameters, self.GUIDANCE, context)
        given = parameters.get(self.GUIDANCE)
        given = given if isinstance(given, (list, tuple)) else [given] if given else []
        if len(layers) < len(given):
            loaded = {layer.source() for layer in layers}
            missing = next((g for g in given if isinstance(g, str) and g not in loaded), None)
            raise unloadable_layer_error("guidance", missing)
        if not layers:
            raise QgsProcessingException(
                self.tr("No guidance layer given; the guidance defines the output grid.")
            )
        return layers


def result_method_name(method: str, blend_members: tuple[str, ...]) -> str:
    """The method as layer names say it; a blend the network took no part in names its members."""
    if method == "blend" and blend_members and "mocolsk" not in blend_members:
        return " + ".join(METHOD_NAMES[m] for m in blend_members) + " blend"
    return METHOD_NAMES[method]


def result_layer_name(grid: QgsRasterLayer, method_name: str, scale: int, units: str) -> str:
    """Says what an output is, e.g. "LST 30 m, MoCoLSK x4 (K)", so that runs side by side can be told apart."""
    size = grid.rasterUnitsPerPixelX()
    size_text = f"{size:.0f}" if size >= 1 else f"{size:.2g}"
    pixel = f"{size_text} {QgsUnitTypes.toAbbreviatedString(grid.crs().mapUnits())}"
    return tr("LST {pixel}, {method} x{scale} ({units})").format(
        pixel=pixel, method=method_name, scale=scale, units=UNIT_SYMBOLS[units]
    )


def name_on_load(context, output_path: str, descriptive_name: str) -> None:
    """Names the layer loaded from ``output_path``: after the file the user chose, else (a temporary output)
    after what it is."""
    if context.willLoadLayerOnCompletion(output_path):
        details = context.layerToLoadOnCompletionDetails(output_path)
        temporary = Path(QgsProcessingUtils.tempFolder()) in Path(output_path).parents
        details.name = descriptive_name if temporary else Path(output_path).stem
        details.forceName = True


def refuse_guidance_as_lst(lst_path: str, guidance) -> None:
    """A guidance layer chosen as the Coarse LST (the stack Build guidance stack just added is the active
    layer) is a wrong pick, not an LST on the guidance grid: say so."""
    chosen = next((layer for layer in guidance if layer.source() == lst_path), None)
    if chosen is not None:
        raise QgsProcessingException(
            tr(
                "The Coarse LST layer is the guidance layer {name!r}; choose the coarse land surface temperature "
                "raster as Coarse LST layer."
            ).format(name=chosen.name())
        )
