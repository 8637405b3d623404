"""The stages of one scene run, in the order `engine.pipeline.downscale_scene` calls them.

- `request`: what a run is asked (`DownscaleRequest`), checked before anything is read, and
  what it reports (`DownscaleResult`);
- `context`: the caller's progress, cancel check and log, shared by every stage;
- `inputs`: open the guidance (the output grid), the LST and the QA mask;
- `coarse`: the LST in Kelvin on the coarse grid (conversion, masking, warping, coverage);
- `method`: the predictor (a MoCoLSK package or a classic sharpener), its scale and bands;
- `tiles`: the scene-wide fit and the overlapping tiles, blended into a scratch raster;
- `write`: the output raster, its metadata and the atomic move into place.
"""
