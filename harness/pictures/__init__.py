"""Drawing: charts (curves, bars, heatmaps) and mask overlays, written reproducibly."""
