"""Training and inference for one run, one module per concept:

- ``trainer``: ``train`` and the ``Trainer`` whose ``run`` is the protocol's loop;
- ``build``: the run's components from their plugins, its loader and training step;
- ``step``: one optimizer step (``TrainStep``); ``device``: device, seeding, precision;
- ``loader``: the training loader; ``inference``: validation Dice and test-time augmentation;
- ``state``: where training stands (``TrainingState``), saved with every checkpoint;
- ``checkpoint``: the checkpoint files; ``writer``: writing them while training goes on;
- ``resume``: loading a checkpoint and replaying an interrupted epoch's draws;
- ``control``: Ctrl-C and the ranks' agreement to stop; ``oom``: the out-of-memory fallback;
- ``failures``: what a failed run says; ``events``: what training reports (``TrainObserver``);
- ``distributed``: data-parallel processes.
"""
