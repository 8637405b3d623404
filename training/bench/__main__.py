"""`python -m training.bench` (`make bench`): the speed and memory benchmark, `training.bench.speed`."""

from .speed import main

main()
