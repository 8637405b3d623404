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
from ..style import natural_colour_on_load
from .common import (
    MoCoLSKAlgorithm,
    chosen_model,
    file_path,
    help_html,
    load_engine_module,
    model_parameters,
    releases_layers_on_error,
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


class BuildGuidanceAlgorithm(MoCoLSKAlgorithm):
    MTL = "LANDSAT_MTL"
    DEM = "DEM"
    ENCODING = "SR_ENCODING"
    BANDS = "BANDS"
    OUTPUT = "OUTPUT"

    def name(self):
        return "buildguidance"

    def displayName(self):  # noqa: N802
        return self.tr("Build guidance stack")

    def shortHelpString(self):  # noqa: N802
        return help_html(self.name())

    def tags(self):
        return ["guidance", "landsat", "surface reflectance", "ndvi", "dem", "stack", "mocolsk"]

    def initAlgorithm(self, config=None):  # noqa: N802
        for parameter, _, label in REFLECTANCE_INPUTS:
            self.addParameter(
                with_help(
                    QgsProcessingParameterRasterLayer(parameter, self.tr(label), optional=True),
                    self.tr(
                        "{band} surface reflectance, band 1 of the layer. Needed only if the model uses it "
                        "directly or through an index."
                    ).format(band=self.tr(label.split(" (")[0])),
                )
            )
        self.addParameter(
            with_help(
                QgsProcessingParameterFile(
                    self.MTL,
                    self.tr("Landsat Level-1 metadata (*_MTL.txt)"),
                    extension="txt",
                    optional=True,
                ),
                self.tr(
                    "Only for Level-1 digital numbers: the scene's MTL file; its band files must lie "
                    "beside it."
                ),
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterLayer(
                    self.DEM, self.tr("Elevation (DEM, metres)"), optional=True
                ),
                self.tr(
                    "Needed when the model uses elevation; any grid and CRS, it is resampled onto the"
                    " reflectance grid."
                ),
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterEnum(
                    self.ENCODING,
                    self.tr("Reflectance values are"),
                    options=[self.tr(label) for _, label in ENCODINGS],
                    defaultValue=0,
                ),
                self.tr(
                    "Collection 2 Level-2 SR_B* files hold scaled integers; choose 0-1 reflectance "
                    "for rasters already converted."
                ),
            )
        )
        auto_label = self.tr("Model (auto: the bands the bundled packages expect)")
        auto_help = self.tr(
            "auto (the default) writes the guidance bands every bundled package expects, so the stack suits "
            "whichever one Downscale LST picks. "
        )
        for parameter in model_parameters(auto_label, auto_help):
            self.addParameter(parameter)
        self.addParameter(
            with_help(
                QgsProcessingParameterString(
                    self.BANDS, self.tr("Band list instead of a model (comma separated)"), optional=True
                ),
                self.tr(
                    "E.g. red,nir,ndvi for TsHARP or blue,green,red,nir,swir1,swir2 for DMS; "
                    "overrides the model's list. Known names: deepblue, blue, green, red, nir, swir1,"
                    " swir2, ndvi, ndwi, mndwi, ndbi, ndmi, dem."
                ),
                advanced=True,
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Guidance stack")),
                self.tr(
                    "Float32 GeoTIFF on the reflectance grid, one named band per guidance band, NaN "
                    "as nodata."
                ),
            )
        )
        self.addOutput(QgsProcessingOutputString("BAND_NAMES", self.tr("Band names, in order")))

    @releases_layers_on_error
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        guidance = load_engine_module("guidance_stack")
        band_list = self.parameterAsString(parameters, self.BANDS, context).strip()
        if band_list:
            names, units = [name.strip() for name in band_list.split(",") if name.strip()], None
        else:
            card = self.model_card(parameters, context)
            names, units = list(card.guidance_band_names), [band.units for band in card.guidance_bands]
            if chosen_model(self, parameters, context, auto=True) is None:
                feedback.pushInfo(
                    self.tr("Model auto: the bundled packages expect {bands}").format(bands=", ".join(names))
                )
            else:
                feedback.pushInfo(
                    self.tr("Model {name} {version} expects: {bands}").format(
                        name=card.name, version=card.version, bands=", ".join(names)
                    )
                )
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
        natural_colour_on_load(context, output)
        return {self.OUTPUT: output, "BAND_NAMES": ",".join(names)}

    def model_card(self, parameters, context):
        """The card of the chosen package; for "auto" the card of the bundled packages, which must agree on
        their guidance bands."""
        try:
            model = chosen_model(self, parameters, context, auto=True)
            if model is not None:
                return package.resolve_package(model, verify=False).card
            cards = [
                package.load_package(path, verify=False).card for path in package.bundled_packages().values()
            ]
        except errors.PackageError as error:
            raise QgsProcessingException(str(error)) from error
        band_lists = {tuple(card.guidance_band_names) for card in cards}
        if len(band_lists) != 1:
            raise QgsProcessingException(
                self.tr(
                    "The bundled packages expect different guidance bands ({lists}); choose the model you will "
                    "downscale with."
                ).format(
                    lists="; ".join(", ".join(bands) for bands in sorted(band_lists)) or "none installed"
                )
            )
        return cards[0]
