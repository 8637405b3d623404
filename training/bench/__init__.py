"""Benchmarks: how fast and how accurate MoCoLSK and its baselines are.

- `speed` (`make bench`, `python -m training.bench`): the network alone on one tile per scale
  and backend, then the scene and memory tables;
- `scene`: the whole engine pipeline on a realistic scene, per method and backend;
- `accuracy` (`make benchmark`): held-out accuracy against the classic and deep baselines;
- `measure`: what they share (peak arithmetic rate, peak memory, backends, the timed package).
"""
