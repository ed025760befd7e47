"""Which trials a sweep holds: SC-SDC grids, the SNAS search space and its samplers, warm starts and
baselines, and the plan types. May import Optuna and core's pure helpers; never Ray, the engine or the store.
"""
