"""Studies built on runs: ``harness sweep`` (one axis varied, an ablation table) and
``harness tune`` (the same tuning budget for every entry, then its final runs)."""
