"""Training and inference for one run: device, data loading, the step, checkpoints,
Ctrl-C and rank agreement, data-parallel processes, and the trainer itself."""
