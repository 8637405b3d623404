# How geotiff/*.tif were made from source_rda/*.rda (run in this folder; R 4.2.2, sp 1.6-0, raster 3.6-14).
# Values are copied unchanged (verified identical, 90000 px each). The CRS is NOT in the .rda files:
# UTM zone 18N / WGS 84 is an inference (see SOURCE.md).
# After writing, the NoData tag that raster adds for INT1U (255) was removed with GDAL:
#   python3 -c "from osgeo import gdal; ds=gdal.Open(F,1); ds.GetRasterBand(1).DeleteNoDataValue()"
# because 255 is a real (saturated) DN in the reflective bands; the .aux.xml side files were deleted.
suppressMessages({library(sp); library(raster)})
crs18 <- CRS("+proj=utm +zone=18 +datum=WGS84 +units=m +no_defs")
dir.create("geotiff", showWarnings=FALSE)
for (b in c("1","2","3","4","5","61","62","7")) {
  n <- paste0("nov", b); e <- new.env(); load(file.path("source_rda", paste0(n, ".rda")), envir=e)
  r <- raster(get(n, e)); crs(r) <- crs18
  writeRaster(r, file.path("geotiff", paste0(n, ".tif")), datatype="INT1U", overwrite=TRUE, options=c("COMPRESS=DEFLATE"))
}
