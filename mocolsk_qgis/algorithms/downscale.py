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

from ..style import style_on_load
from .common import (
    LST_UNIT_CHOICES,
    MoCoLSKAlgorithm,
    bundled_accuracy_help,
    chosen_model,
    file_path,
    load_engine_module,
    model_parameters,
    run_engine,
    with_help,
)

# (engine value, label) pairs; Processing stores the index, the engine wants the value.
METHODS = (
    ("mocolsk", "MoCoLSK-Net (deep network, needs a model)"),
    ("bicubic", "Bicubic interpolation (ignores the guidance)"),
    ("tsharp", "TsHARP (regression on NDVI)"),
    ("dms", "DMS (regression trees on all guidance bands)"),
)
METHOD_NAMES = {"mocolsk": "MoCoLSK", "bicubic": "bicubic", "tsharp": "TsHARP", "dms": "DMS"}
DEVICES = (("auto", "Auto (GPU if available)"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)"))
BACKENDS = (("onnxruntime", "ONNX Runtime"), ("torch", "PyTorch"))
OUTPUT_UNIT_CHOICES = (("kelvin", "Kelvin"), ("celsius", "Celsius"))
UNIT_SYMBOLS = {"kelvin": "K", "celsius": "°C"}
QA_MASK_KINDS = (
    ("auto", "Auto (Landsat QA_PIXEL by name, else non-zero)"),
    ("nonzero", "Any non-zero value is masked"),
    ("landsat_qa_pixel", "Landsat Collection 2 QA_PIXEL bits (fill, cloud, shadow, cirrus)"),
)

HELP = """<p>Downscales a coarse land surface temperature (LST) raster onto the grid of fine guidance layers (e.g. 120 m LST to 30 m), and writes LST in Kelvin or Celsius.</p>
<p><b>Inputs.</b> The LST may be in Kelvin, Celsius, Landsat 8/9 Collection 2 Level-2 ST_B10 or MODIS MOD11 digital numbers; "Auto-detect" reads the band's unit, the file name, then the value range, and the log says what it decided. The guidance layers (several single-band layers or one multiband layer, all on one grid) define the output grid. Their bands are matched to what the method needs by band description, or by the names given under Advanced; NDVI and NDWI are derived from red, green and NIR when missing. "Build guidance stack" prepares a stack from Landsat 8/9 surface reflectance. After conversion the LST must lie in {low_kelvin:.0f}-{high_kelvin:.0f} K (all that Landsat Collection 2 ST_B10 holds, and hot targets such as lava); otherwise the run stops and says which units to choose.</p>
<p><b>Grids.</b> The LST pixel must be a whole multiple of the guidance pixel (the model's scale for MoCoLSK, 2-16 for the classic methods); an LST on another CRS or a shifted grid is area-averaged onto the matching coarse grid first.</p>
<p><b>Methods.</b> MoCoLSK-Net is the modality-conditioned large-selective-kernel network (Dai et al. 2024) run with ONNX Runtime or PyTorch; bicubic, TsHARP and DMS are the classic baselines. With coarse-pixel conservation on, the output averaged back onto each coarse pixel equals the input LST. MoCoLSK's output stays within the range of the surrounding coarse LST, widened by that range plus 0.5 K, so inputs unlike its training data (volcanic hot spots, cloud tops) cannot make it run away; the log and the output's metadata give the number of clipped pixels.</p>
<p>Masked pixels (nodata, QA mask) stay nodata (-9999). The scene is processed in overlapping tiles, so memory does not grow with its size. A cancelled or failed run leaves no output file.</p>"""


class DownscaleAlgorithm(MoCoLSKAlgorithm):
    INPUT_LST = "INPUT_LST"
    LST_BAND = "LST_BAND"
    LST_UNITS = "LST_UNITS"
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

    def name(self):
        return "downscalelst"

    def displayName(self):  # noqa: N802
        return "Downscale LST"

    def shortHelpString(self):  # noqa: N802
        units = load_engine_module("units")
        return (
            HELP.format(low_kelvin=units.PLAUSIBLE_MIN_KELVIN, high_kelvin=units.PLAUSIBLE_MAX_KELVIN)
            + bundled_accuracy_help()
        )

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
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterLayer(self.INPUT_LST, "Coarse LST layer"),
                "The coarse land surface temperature raster to downscale (e.g. 120 m or 1 km).",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterBand(
                    self.LST_BAND,
                    "LST band",
                    defaultValue=1,
                    parentLayerParameterName=self.INPUT_LST,
                    optional=True,
                ),
                "The band of the LST layer that holds the temperature (band 1 when not set).",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterEnum(
                    self.LST_UNITS,
                    "LST units",
                    options=[label for _, label in LST_UNIT_CHOICES],
                    defaultValue=0,
                ),
                "How to read the LST values. Auto-detect uses the band's unit, the file name and the value "
                "range; "
                "choose explicitly when the log shows a wrong guess.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterMultipleLayers(
                    self.GUIDANCE, "Guidance layers (fine grid)", layerType=QgsProcessing.TypeRaster
                ),
                "Fine-resolution guidance on one grid, which becomes the output grid: several single-band "
                "layers "
                "or one multiband layer. Bands are matched to the method's needs by their descriptions.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterEnum(
                    self.METHOD, "Method", options=[label for _, label in METHODS], defaultValue=0
                ),
                "MoCoLSK-Net needs a model package; bicubic, TsHARP and DMS need none.",
            )
        )
        for parameter in model_parameters(auto=True):
            self.addParameter(parameter)
        self.addParameter(
            with_help(
                QgsProcessingParameterEnum(
                    self.DEVICE, "Device", options=[label for _, label in DEVICES], defaultValue=0
                ),
                "Where the network runs. Auto uses a GPU when the backend finds one and says which device "
                "it used; "
                "GPU fails with an explanation instead of falling back silently.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterBoolean(
                    self.CONSERVE, "Conserve coarse-pixel means", defaultValue=True
                ),
                "Correct the result so that its average over each coarse pixel equals the input LST.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterEnum(
                    self.OUTPUT_UNITS,
                    "Output units",
                    options=[label for _, label in OUTPUT_UNIT_CHOICES],
                    defaultValue=0,
                ),
                "Units of the output raster; the loaded layer's legend uses them too.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterString(
                    self.GUIDANCE_BAND_NAMES,
                    "Guidance band names (comma separated, for unnamed bands)",
                    optional=True,
                ),
                "One name per guidance band in the order given, e.g. blue,green,red,nir,swir1,swir2; needed "
                "only "
                "when the bands have no descriptions.",
                advanced=True,
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterLayer(
                    self.QA_MASK, "Cloud/QA mask on the LST grid", optional=True
                ),
                "Optional raster on the LST's grid marking pixels to ignore (e.g. Landsat QA_PIXEL).",
                advanced=True,
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterEnum(
                    self.QA_MASK_KIND,
                    "QA mask kind",
                    options=[label for _, label in QA_MASK_KINDS],
                    defaultValue=0,
                ),
                "How the QA mask marks bad pixels.",
                advanced=True,
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterNumber(
                    self.QA_MASK_GROW,
                    "Grow the QA mask by (LST pixels)",
                    defaultValue=0,
                    minValue=0,
                    maxValue=50,
                ),
                "Also mask the LST pixels within this many pixels of a masked one. Cloud edges and thin "
                "cirrus "
                "that the QA band misses spoil the network's result near clouds; 2-8 px is typical for "
                "Landsat. "
                "Needs a QA mask.",
                advanced=True,
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterEnum(
                    self.BACKEND,
                    "Inference backend",
                    options=[label for _, label in BACKENDS],
                    defaultValue=0,
                ),
                "ONNX Runtime needs only the onnxruntime package; PyTorch needs torch and the package's .pt "
                "weights.",
                advanced=True,
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterNumber(
                    self.TILE_SIZE, "Tile size (fine pixels)", defaultValue=512, minValue=16, maxValue=8192
                ),
                "Side of the square tiles the scene is processed in; larger tiles are faster but need more "
                "memory.",
                advanced=True,
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterNumber(
                    self.THREADS,
                    "CPU threads (0 = backend default)",
                    defaultValue=0,
                    minValue=0,
                    maxValue=256,
                ),
                "Threads the CPU backend may use.",
                advanced=True,
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterBoolean(
                    self.COG, "Write a Cloud Optimized GeoTIFF", defaultValue=False
                ),
                "Write the output as a COG with overviews.",
                advanced=True,
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterDestination(self.OUTPUT, "Downscaled LST"),
                "GeoTIFF on the guidance grid with nodata -9999.",
            )
        )
        self.addOutput(QgsProcessingOutputNumber("SCALE", "Scale factor"))
        self.addOutput(
            QgsProcessingOutputNumber("MAX_CONSERVATION_RESIDUAL_K", "Largest coarse-pixel residual (K)")
        )
        self.addOutput(QgsProcessingOutputString("LST_UNITS_USED", "LST units used"))
        self.addOutput(QgsProcessingOutputString("DEVICE_USED", "Device used"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        pipeline = load_engine_module("pipeline")
        method = METHODS[self.parameterAsEnum(parameters, self.METHOD, context)][0]
        names = self.parameterAsString(parameters, self.GUIDANCE_BAND_NAMES, context)
        qa_mask = self.parameterAsRasterLayer(parameters, self.QA_MASK, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        guidance = self.guidance_layers(parameters, context)
        request = pipeline.DownscaleRequest(
            lst_path=file_path(self.parameterAsRasterLayer(parameters, self.INPUT_LST, context), "LST"),
            lst_band=self.parameterAsInt(parameters, self.LST_BAND, context),
            lst_units=LST_UNIT_CHOICES[self.parameterAsEnum(parameters, self.LST_UNITS, context)][0],
            guidance_paths=[file_path(layer, "guidance") for layer in guidance],
            guidance_band_names=[name.strip() for name in names.split(",")] if names.strip() else None,
            qa_mask_path=file_path(qa_mask, "QA mask") if qa_mask else None,
            qa_mask_kind=QA_MASK_KINDS[self.parameterAsEnum(parameters, self.QA_MASK_KIND, context)][0],
            qa_mask_grow_px=self.parameterAsInt(parameters, self.QA_MASK_GROW, context),
            method=method,
            model=chosen_model(self, parameters, context, auto=True) if method == "mocolsk" else None,
            backend=BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)][0],
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)][0],
            threads=self.parameterAsInt(parameters, self.THREADS, context) or None,
            tile_size_px=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            conserve_coarse_means=self.parameterAsBoolean(parameters, self.CONSERVE, context),
            output_units=OUTPUT_UNIT_CHOICES[self.parameterAsEnum(parameters, self.OUTPUT_UNITS, context)][0],
            output_path=output,
            overwrite=True,
            cog=self.parameterAsBoolean(parameters, self.COG, context),
        )
        result = run_engine(feedback, pipeline.downscale_scene, request)
        feedback.pushInfo(
            f"Done: x{result.scale} with "
            f"{result.method}{' ' + result.model_name if result.model_name else ''} "
            f"on {result.device}, {result.tiles} tile(s); LST read as {result.lst_units} "
            f"({result.lst_units_reason})."
        )
        style_on_load(context, output, request.output_units)
        name_on_load(
            context, output, result_layer_name(guidance[0], method, result.scale, request.output_units)
        )
        return {
            self.OUTPUT: output,
            "SCALE": result.scale,
            "MAX_CONSERVATION_RESIDUAL_K": result.max_conservation_residual_k,
            "LST_UNITS_USED": result.lst_units,
            "DEVICE_USED": result.device,
        }

    def guidance_layers(self, parameters, context):
        layers = self.parameterAsLayerList(parameters, self.GUIDANCE, context)
        if not layers:
            raise QgsProcessingException("No guidance layer given; the guidance defines the output grid.")
        return layers


def result_layer_name(grid: QgsRasterLayer, method: str, scale: int, units: str) -> str:
    """Says what an output is, e.g. "LST 30 m, MoCoLSK x4 (K)", so that runs side by side can be told apart."""
    size = grid.rasterUnitsPerPixelX()
    size_text = f"{size:.0f}" if size >= 1 else f"{size:.2g}"
    pixel = f"{size_text} {QgsUnitTypes.toAbbreviatedString(grid.crs().mapUnits())}"
    return f"LST {pixel}, {METHOD_NAMES[method]} x{scale} ({UNIT_SYMBOLS[units]})"


def name_on_load(context, output_path: str, descriptive_name: str) -> None:
    """Names the layer loaded from ``output_path``: after the file the user chose, else (a temporary output)
    after what it is."""
    if context.willLoadLayerOnCompletion(output_path):
        details = context.layerToLoadOnCompletionDetails(output_path)
        temporary = Path(QgsProcessingUtils.tempFolder()) in Path(output_path).parents
        details.name = descriptive_name if temporary else Path(output_path).stem
        details.forceName = True
