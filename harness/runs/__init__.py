"""Runs of a benchmark: requests, plans, jobs decided and dispatched, executors, one seed
trained, and what a run reports while it trains (tracking)."""
