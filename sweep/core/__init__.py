"""One trial in plain PyTorch: data, masked layers, models, masks, gradient flow (EGF) and the trainer.

Imports torch and `sweep.spec` only: never Ray, Optuna, DuckDB or pandas, and no other layer.
"""
