"""A finished run's model at work: ``harness predict`` (submissions, ensembles, test-time
flips) and ``harness export`` (ONNX, TorchScript). Below the runs: they read a run folder's
record and final weights and train nothing."""
