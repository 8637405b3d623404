# How geotiff/*.tif were made from source/L7_Talca.rda (run in this folder; R 4.2.2, raster 3.6-14).
# DN values are copied unchanged; NA (SLC-off gaps and a frame, same 9150 px in every layer) is written as 0,
# which is the Level-1 fill value anyway (QCALMIN = 1). Verified identical to the .rda (NA -> 0).
# After writing, NoData was set to 0 with GDAL (raster's default INT1U flag 255 removed, as 255 is a real DN):
#   python3 -c "from osgeo import gdal; ds=gdal.Open(F,1); b=ds.GetRasterBand(1); b.DeleteNoDataValue(); b.SetNoDataValue(0)"
# and the .aux.xml side files were deleted.
suppressMessages(library(raster))
load("source/L7_Talca.rda"); x <- L7_Talca   # RasterBrick, 417 x 508 x 7, EPSG:32719, in memory
fn <- c(B="B1", G="B2", R="B3", NIR="B4", SWIR1="B5", Thermal1="B6_VCID_1", SWIR2="B7")
dir.create("geotiff", showWarnings=FALSE)
for (i in 1:nlayers(x)) {
  r <- x[[i]]; v <- values(r); v[is.na(v)] <- 0; values(r) <- v
  writeRaster(r, file.path("geotiff", paste0("L7_Talca_", fn[[names(x)[i]]], ".tif")), datatype="INT1U", overwrite=TRUE, options=c("COMPRESS=DEFLATE"))
}
