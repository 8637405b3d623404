"""Processing algorithm "Build guidance stack": Landsat surface reflectance (+ DEM) to the
multiband guidance raster a model expects."""

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .._engine import errors, package
from .common import (
    MoCoLSKAlgorithm,
    chosen_model,
    file_path,
    load_engine_module,
    model_parameters,
    run_engine,
    with_help,
)

# (parameter name, engine reflectance name, label with the Landsat 8/9 and 4-7 band files)
REFLECTANCE_INPUTS = (
    ("DEEPBLUE", "deepblue", "Coastal/aerosol (Landsat 8/9 SR_B1)"),
    ("BLUE", "blue", "Blue (Landsat 8/9 SR_B2; Landsat 4-7 SR_B1)"),
    ("GREEN", "green", "Green (Landsat 8/9 SR_B3; Landsat 4-7 SR_B2)"),
    ("RED", "red", "Red (Landsat 8/9 SR_B4; Landsat 4-7 SR_B3)"),
    ("NIR", "nir", "Near infrared (Landsat 8/9 SR_B5; Landsat 4-7 SR_B4)"),
    ("SWIR1", "swir1", "Shortwave infrared 1 (Landsat 8/9 SR_B6; Landsat 4-7 SR_B5)"),
    ("SWIR2", "swir2", "Shortwave infrared 2 (Landsat 8/9 SR_B7; Landsat 4-7 SR_B7)"),
)
ENCODINGS = (
    ("c2l2_dn", "Collection 2 Level-2 digital numbers (DN x 0.0000275 - 0.2, 0 = fill)"),
    ("reflectance", "Reflectance already scaled to 0-1"),
    ("landsat_l1_toa", "Landsat Level-1 digital numbers, to TOA reflectance (needs the MTL file)"),
)

HELP = """<p>Builds the multiband guidance raster for "Downscale LST" from Landsat Collection 2 Level-2 surface reflectance bands (Landsat 8/9 OLI, or Landsat 4-7 TM/ETM+) and an optional DEM.</p>
<p>The bands are written in the order, and in the units, the chosen model's card lists (reflectance 0-1, unitless indices such as NDVI = (NIR - red) / (NIR + red), elevation in metres); each band's description is its name, so "Downscale LST" matches them without further input. Give only the reflectance bands the model needs; the log and any error name the missing ones. Instead of a model, a comma-separated band list (e.g. red,nir,ndvi) can be given under Advanced.</p>
<p>For Landsat Level-1 scenes (what the bundled models were trained on) give the scene's *_MTL.txt file and choose "Landsat Level-1": the band files beside it are found and converted to top-of-atmosphere reflectance with the MTL's gains and sun elevation; band layers given explicitly take precedence.</p>
<p>The reflectance bands must share one grid (one Landsat scene, clipped alike); the DEM is resampled bilinearly onto it. Fill pixels (DN 0) become nodata (NaN).</p>"""


class BuildGuidanceAlgorithm(MoCoLSKAlgorithm):
    MTL = "LANDSAT_MTL"
    DEM = "DEM"
    ENCODING = "SR_ENCODING"
    BANDS = "BANDS"
    OUTPUT = "OUTPUT"

    def name(self):
        return "buildguidance"

    def displayName(self):  # noqa: N802
        return "Build guidance stack"

    def shortHelpString(self):  # noqa: N802
        return HELP

    def tags(self):
        return ["guidance", "landsat", "surface reflectance", "ndvi", "dem", "stack", "mocolsk"]

    def initAlgorithm(self, config=None):  # noqa: N802
        for parameter, _, label in REFLECTANCE_INPUTS:
            self.addParameter(
                with_help(
                    QgsProcessingParameterRasterLayer(parameter, label, optional=True),
                    f"{label.split(' (')[0]} surface reflectance, band 1 of the layer. Needed only if the "
                    "model uses "
                    f"it directly or through an index.",
                )
            )
        self.addParameter(
            with_help(
                QgsProcessingParameterFile(
                    self.MTL, "Landsat Level-1 metadata (*_MTL.txt)", extension="txt", optional=True
                ),
                "Only for Level-1 digital numbers: the scene's MTL file; its band files must lie beside it.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterLayer(self.DEM, "Elevation (DEM, metres)", optional=True),
                "Needed when the model uses elevation; any grid and CRS, it is resampled onto the "
                "reflectance grid.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterEnum(
                    self.ENCODING,
                    "Reflectance values are",
                    options=[label for _, label in ENCODINGS],
                    defaultValue=0,
                ),
                "Collection 2 Level-2 SR_B* files hold scaled integers; choose 0-1 reflectance for rasters "
                "already converted.",
            )
        )
        for parameter in model_parameters():
            self.addParameter(parameter)
        self.addParameter(
            with_help(
                QgsProcessingParameterString(
                    self.BANDS, "Band list instead of a model (comma separated)", optional=True
                ),
                "E.g. red,nir,ndvi for TsHARP or blue,green,red,nir,swir1,swir2 for DMS; overrides the "
                "model's list. "
                "Known names: deepblue, blue, green, red, nir, swir1, swir2, ndvi, ndwi, mndwi, ndbi, ndmi, "
                "dem.",
                advanced=True,
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterDestination(self.OUTPUT, "Guidance stack"),
                "Float32 GeoTIFF on the reflectance grid, one named band per guidance band, NaN as nodata.",
            )
        )
        self.addOutput(QgsProcessingOutputString("BAND_NAMES", "Band names, in order"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        guidance = load_engine_module("guidance_stack")
        band_list = self.parameterAsString(parameters, self.BANDS, context).strip()
        if band_list:
            names, units = [name.strip() for name in band_list.split(",") if name.strip()], None
        else:
            card = self.model_card(parameters, context)
            names, units = list(card.guidance_band_names), [band.units for band in card.guidance_bands]
            feedback.pushInfo(f"Model {card.name} {card.version} expects: {', '.join(names)}")
        reflectance = {}
        for parameter, reflectance_name, label in REFLECTANCE_INPUTS:
            layer = self.parameterAsRasterLayer(parameters, parameter, context)
            if layer is not None:
                reflectance[reflectance_name] = file_path(layer, label)
        dem = self.parameterAsRasterLayer(parameters, self.DEM, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        run_engine(
            feedback,
            guidance.build_guidance_stack,
            output,
            names,
            reflectance,
            dem_path=file_path(dem, "DEM") if dem else None,
            encoding=ENCODINGS[self.parameterAsEnum(parameters, self.ENCODING, context)][0],
            expected_units=units,
            mtl_path=self.parameterAsFile(parameters, self.MTL, context) or None,
        )
        return {self.OUTPUT: output, "BAND_NAMES": ",".join(names)}

    def model_card(self, parameters, context):
        try:
            return package.resolve_package(chosen_model(self, parameters, context), verify=False).card
        except errors.PackageError as error:
            raise QgsProcessingException(str(error)) from error
