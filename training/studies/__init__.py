"""One-off studies: measurements run once to decide something (their results are in training/README.md),
kept so that they can be rerun, not features of the package."""
