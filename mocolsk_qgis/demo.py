"""`make demo`: downscale the bundled Landsat 5 TM sample through QGIS Processing, headless.

    python -m mocolsk_qgis.demo [--out demo-output] [--model mocolsk-x4-landsat-light]

Steps, each a Processing algorithm as a user would chain them in the Toolbox:
1. ``gdal:warpreproject``: the thermal band (sensed at 120 m, delivered on the 30 m grid)
   area-averaged onto a 120 m grid: the coarse LST;
2. ``mocolsk:buildguidance``: the Level-1 reflective bands -> TOA guidance stack the model expects;
3. ``mocolsk:downscalelst``: MoCoLSK (and bicubic, for comparison) back to 30 m;
4. ``mocolsk:evaluate``: both against the 30 m thermal band, printed and written as HTML.
Then a quicklook PNG: coarse input, guidance composite, MoCoLSK output, difference.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Engine values of the dropdown choices the demo makes; Processing takes their indexes.
LST_UNITS = "landsat5_tm_b6_dn"
SR_ENCODING = "landsat_l1_toa"
COMPARED_METHODS = ("blend", "mocolsk", "bicubic")
REPORTED = ("RMSE", "MAE", "BIAS", "CC", "SSIM", "PSNR")


def option_index(choices, value: str) -> int:
    """The index Processing stores for ``value`` in an algorithm's (value, label) choices."""
    return [choice for choice, _ in choices].index(value)


def start_qgis():
    """A headless QgsApplication with Processing and the MoCoLSK provider registered."""
    from qgis.core import QgsApplication

    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    from mocolsk_qgis.provider import MoCoLSKProvider

    provider = MoCoLSKProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    return app, provider


def run(algorithm: str, parameters: dict) -> dict:
    import processing
    from qgis.core import QgsProcessingFeedback

    class PrintedFeedback(QgsProcessingFeedback):
        def pushInfo(self, info):  # noqa: N802
            print(f"    {info}")

    print(f"  {algorithm}")
    return processing.run(algorithm, parameters, feedback=PrintedFeedback())


def read(path: Path, band: int = 1):
    """One band of a raster as float64, nodata as NaN (through the engine's raster layer)."""
    from mocolsk_qgis._engine import engine_module

    return engine_module("raster").read_band_values(path, band)[0].astype("float64")


def quicklook(out_png: Path, coarse_k, guidance_path: Path, fine_k, reference_k, metrics: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rgb = np.dstack([read(guidance_path, band) for band in (3, 2, 1)])
    low, high = np.nanpercentile(rgb, (2, 98), axis=(0, 1))
    rgb = np.clip((rgb - low) / (high - low), 0, 1)
    low_k, high_k = np.nanpercentile(reference_k, (1, 99))
    difference = fine_k - reference_k
    limit = max(float(np.nanpercentile(np.abs(difference), 99)), 0.05)
    figure, axes = plt.subplots(1, 4, figsize=(16, 4.6), constrained_layout=True)
    panels = (
        ("Coarse input, 120 m (K)", coarse_k, dict(cmap="inferno", vmin=low_k, vmax=high_k)),
        ("Guidance: TOA red/green/blue, 30 m", rgb, {}),
        ("MoCoLSK output, 30 m (K)", fine_k, dict(cmap="inferno", vmin=low_k, vmax=high_k)),
        ("Output minus reference (K)", difference, dict(cmap="bwr", vmin=-limit, vmax=limit)),
    )
    for axis, (title, image, style) in zip(axes, panels):
        shown = axis.imshow(image, interpolation="nearest", **style)
        axis.set_title(title)
        axis.set_xticks([])
        axis.set_yticks([])
        if style:
            figure.colorbar(shown, ax=axis, shrink=0.8)
    figure.suptitle(
        "Landsat 5 TM, 1988-08-14: 120 m thermal downscaled x4 by MoCoLSK — "
        f"RMSE {metrics['mocolsk']['RMSE']:.3f} K (bicubic {metrics['bicubic']['RMSE']:.3f} K)"
    )
    figure.savefig(out_png, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mocolsk_qgis.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--model", default="mocolsk-x4-landsat-light")
    args = parser.parse_args(argv)
    from mocolsk_qgis._engine import engine_module, resource
    from mocolsk_qgis.algorithms.build_guidance import ENCODINGS
    from mocolsk_qgis.algorithms.common import LST_UNIT_CHOICES
    from mocolsk_qgis.algorithms.downscale import METHODS

    tm_b6_dn_units = option_index(LST_UNIT_CHOICES, LST_UNITS)

    sample = resource("sample", "landsat5-tm-1988")
    if not sample.is_dir():
        print("The bundled sample scene resources/sample/landsat5-tm-1988 is missing.", file=sys.stderr)
        return 1
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    thermal_30m = sample / "LT52240631988227CUB02_B6.TIF"
    app, _provider = start_qgis()
    print(f"MoCoLSK demo on {sample.name}, writing to {out}")
    # Averaging digital numbers rather than Kelvin: over a 4x4 block of a ~1 K range the
    # Planck curvature makes the two differ by well under a millikelvin.
    coarse = run(
        "gdal:warpreproject",
        {
            "INPUT": str(thermal_30m),
            "RESAMPLING": 5,
            "TARGET_RESOLUTION": 120,
            "DATA_TYPE": 6,
            "NODATA": 255,
            "OUTPUT": str(out / "lst_120m_tm_b6_dn.tif"),
        },
    )["OUTPUT"]
    guidance = run(
        "mocolsk:buildguidance",
        {
            "LANDSAT_MTL": str(sample / "LT52240631988227CUB02_MTL.txt"),
            "SR_ENCODING": option_index(ENCODINGS, SR_ENCODING),
            "MODEL": args.model,
            "OUTPUT": str(out / "guidance_30m_toa.tif"),
        },
    )["OUTPUT"]
    metrics = {}
    for method in COMPARED_METHODS:
        fine = run(
            "mocolsk:downscalelst",
            {
                "INPUT_LST": coarse,
                "LST_UNITS": tm_b6_dn_units,
                "GUIDANCE": [guidance],
                "METHOD": option_index(METHODS, method),
                "MODEL": args.model,
                "DEVICE": 0,
                "OUTPUT": str(out / f"lst_30m_{method}.tif"),
            },
        )["OUTPUT"]
        metrics[method] = run(
            "mocolsk:evaluate",
            {
                "PREDICTION": fine,
                "REFERENCE": str(thermal_30m),
                "REFERENCE_UNITS": tm_b6_dn_units,
                "OUTPUT_HTML": str(out / f"report_{method}.html"),
            },
        )
    print("\nAgainst the 30 m thermal band (Kelvin; the bundled models were trained on most of this")
    print("scene, so these are mostly in-sample figures: see the model card for held-out ones):")
    print("| method | " + " | ".join(REPORTED) + " |")
    print("|---|" + "---|" * len(REPORTED))
    for method, values in metrics.items():
        print(f"| {method} | " + " | ".join(f"{values[name]:.4g}" for name in REPORTED) + " |")
    to_kelvin = engine_module("units").LstUnits("landsat5_tm_b6_dn", "demo").to_kelvin
    quicklook(
        out / "quicklook.png",
        to_kelvin(read(Path(coarse))),
        Path(guidance),
        read(out / "lst_30m_mocolsk.tif"),
        to_kelvin(read(thermal_30m)),
        metrics,
    )
    print(f"\nWrote {out / 'lst_30m_mocolsk.tif'}, {out / 'quicklook.png'} and the HTML reports.")
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
