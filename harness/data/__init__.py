"""Datasets in the competition layout: files, annotations, the split, the preprocessing
cache, dataset checks and statistics, and the synthetic hand phantom."""
