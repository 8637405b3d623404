"""Value samples of guidance bands: one read per window for all bands of a file, the same values as
band by band."""

from __future__ import annotations

import numpy as np
from osgeo import gdal

from engine.raster import sample_bands, sample_values

gdal.UseExceptions()


def test_sampling_all_bands_at_once_gives_each_bands_own_sample(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 500, 600)).astype(np.float32)
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(tmp_path / "stack.tif"), 600, 500, 3, gdal.GDT_Float32, ["TILED=YES", "INTERLEAVE=PIXEL"]
    )
    for index, band in enumerate(values, 1):
        dataset.GetRasterBand(index).WriteArray(band)
    dataset.FlushCache()
    together = sample_bands(dataset, [1, 2, 3], max_pixels=4096)
    one_by_one = np.stack([sample_values(dataset.GetRasterBand(n), 4096) for n in (1, 2, 3)])
    assert together.shape == (3, 64, 64)
    np.testing.assert_array_equal(together, one_by_one)
    np.testing.assert_array_equal(sample_bands(dataset, [2], max_pixels=10**6)[0], values[1])


def test_bands_of_different_types_keep_their_values_and_nan(tmp_path):
    counts = np.full((40, 50), 40000, np.uint16)
    fractions = np.full((40, 50), 0.25, np.float32)
    fractions[0, 0] = np.nan
    driver = gdal.GetDriverByName("GTiff")
    for name, values, kind in (
        ("counts", counts, gdal.GDT_UInt16),
        ("fractions", fractions, gdal.GDT_Float32),
    ):
        single = driver.Create(str(tmp_path / f"{name}.tif"), 50, 40, 1, kind)
        single.GetRasterBand(1).WriteArray(values)
        single = None
    mixed = gdal.BuildVRT(
        str(tmp_path / "mixed.vrt"),
        [str(tmp_path / "counts.tif"), str(tmp_path / "fractions.tif")],
        separate=True,
    )
    sample = sample_bands(mixed, [1, 2])
    assert sample[0].max() == 40000
    assert np.isnan(sample[1, 0, 0]) and sample[1, 1, 1] == np.float32(0.25)
