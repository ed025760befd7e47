"""Sweeps in the experiment trackers users already open (MLflow, TensorBoard), exported from the tables."""
