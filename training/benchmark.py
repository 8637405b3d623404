"""`python -m training.benchmark`, the command the recorded accuracy tables name: the accuracy
benchmark now lives in `training.bench.accuracy` (`make benchmark`)."""

import sys

from .bench.accuracy import main

if __name__ == "__main__":
    sys.exit(main())
