"""Processing algorithm "Evaluate downscaled LST": metrics as outputs, an HTML report and an
optional difference raster."""

import html
from pathlib import Path

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from .._engine import engine_module
from ..style import style_on_load
from .common import (
    LST_UNIT_CHOICES,
    MoCoLSKAlgorithm,
    file_path,
    help_html,
    load_engine_module,
    releases_layers_on_error,
    run_engine,
    with_help,
)

# The engine's metric descriptors (key, output name, label, unit): one table for every report.
METRICS = engine_module("metrics").METRICS


class EvaluateAlgorithm(MoCoLSKAlgorithm):
    PREDICTION = "PREDICTION"
    PREDICTION_BAND = "PREDICTION_BAND"
    PREDICTION_UNITS = "PREDICTION_UNITS"
    REFERENCE = "REFERENCE"
    REFERENCE_BAND = "REFERENCE_BAND"
    REFERENCE_UNITS = "REFERENCE_UNITS"
    REPORT = "OUTPUT_HTML"
    DIFFERENCE = "OUTPUT_DIFFERENCE"

    def name(self):
        return "evaluate"

    def displayName(self):  # noqa: N802
        return self.tr("Evaluate downscaled LST")

    def shortHelpString(self):  # noqa: N802
        return help_html(self.name())

    def tags(self):
        return ["lst", "evaluation", "accuracy", "rmse", "ssim", "psnr", "validation", "mocolsk"]

    def initAlgorithm(self, config=None):  # noqa: N802
        unit_labels = [label for _, label in LST_UNIT_CHOICES]
        for layer, band, units, what in (
            (self.PREDICTION, self.PREDICTION_BAND, self.PREDICTION_UNITS, self.tr("Downscaled LST")),
            (self.REFERENCE, self.REFERENCE_BAND, self.REFERENCE_UNITS, self.tr("Reference LST")),
        ):
            self.addParameter(
                with_help(
                    QgsProcessingParameterRasterLayer(layer, what),
                    f"{what} raster; both rasters must share one grid.",
                )
            )
            self.addParameter(
                with_help(
                    QgsProcessingParameterBand(
                        band, f"{what} band", defaultValue=1, parentLayerParameterName=layer, optional=True
                    ),
                    f"The band of the {what.lower()} layer to compare (band 1 when not set).",
                )
            )
            self.addParameter(
                with_help(
                    QgsProcessingParameterEnum(units, f"{what} units", options=unit_labels, defaultValue=0),
                    self.tr(
                        "How to read the values; auto-detect uses the product name, the band's unit and "
                        "the value range."
                    ),
                )
            )
        self.addParameter(
            with_help(
                QgsProcessingParameterFileDestination(
                    self.REPORT, self.tr("Evaluation report"), fileFilter=self.tr("HTML files (*.html)")
                ),
                self.tr("HTML page with the metrics and how each raster was read."),
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterDestination(
                    self.DIFFERENCE,
                    self.tr("Difference raster (prediction minus reference)"),
                    optional=True,
                    createByDefault=False,
                ),
                self.tr("Optional GeoTIFF of prediction minus reference in Kelvin, nodata -9999."),
            )
        )
        for metric in METRICS:
            self.addOutput(QgsProcessingOutputNumber(metric.name, metric.describe()))

    @releases_layers_on_error
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        evaluation = load_engine_module("evaluation")
        difference = self.parameterAsOutputLayer(parameters, self.DIFFERENCE, context) or None
        prediction = file_path(
            self.parameterAsRasterLayer(parameters, self.PREDICTION, context), "downscaled LST"
        )
        reference = file_path(
            self.parameterAsRasterLayer(parameters, self.REFERENCE, context), "reference LST"
        )
        result = run_engine(
            feedback,
            evaluation.evaluate_rasters,
            prediction,
            reference,
            prediction_band=self.parameterAsInt(parameters, self.PREDICTION_BAND, context),
            reference_band=self.parameterAsInt(parameters, self.REFERENCE_BAND, context),
            prediction_units=LST_UNIT_CHOICES[
                self.parameterAsEnum(parameters, self.PREDICTION_UNITS, context)
            ][0],
            reference_units=LST_UNIT_CHOICES[self.parameterAsEnum(parameters, self.REFERENCE_UNITS, context)][
                0
            ],
            difference_path=difference,
        )
        for metric in METRICS:
            unit = f" {metric.unit}" if metric.unit else ""
            feedback.pushInfo(f"{metric.label}: {result.metrics[metric.key]:.4g}{unit}")
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        Path(report).write_text(_report_html(prediction, reference, result), encoding="utf-8")
        outputs = {self.REPORT: report, **{metric.name: result.metrics[metric.key] for metric in METRICS}}
        if difference:
            style_on_load(context, difference, "difference")
            outputs[self.DIFFERENCE] = difference
        return outputs


def _report_html(prediction: str, reference: str, result) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(metric.label)}</td><td>{result.metrics[metric.key]:.4g}</td><td>{metric.unit}</td></tr>"
        for metric in METRICS
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>MoCoLSK evaluation</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:.3em .8em}} td:nth-child(2){{text-align:right}}</style>
</head><body>
<h1>Downscaled LST evaluation</h1>
<p>Prediction: <code>{html.escape(prediction)}</code>,
read as {html.escape(result.prediction_units.name)} ({html.escape(result.prediction_units.reason)}).<br>
Reference: <code>{html.escape(reference)}</code>,
read as {html.escape(result.reference_units.name)} ({html.escape(result.reference_units.reason)}).<br>
Grid: {result.grid.width} x {result.grid.height} px. Metrics in Kelvin over pixels valid in both rasters;
bias is prediction minus reference.</p>
<table><tr><th>Metric</th><th>Value</th><th>Unit</th></tr>
{rows}
</table>
</body></html>
"""
