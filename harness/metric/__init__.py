"""The competition's metric: Dice per image and class, run-length encoding, submission
files, and scoring a submission against a labelled dataset."""
