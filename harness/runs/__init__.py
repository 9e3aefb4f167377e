"""Runs of a benchmark: requests, plans, executing seeds, sweeps and predictions."""
