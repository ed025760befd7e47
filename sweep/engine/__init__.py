"""Runs trials and records them: in this process (`sweep train`) or on Ray Tune (the driver, `driver.py`,
read top to bottom, and its stages, the worker trainable, callbacks, Ray sessions, `submit`), and the
recorder that turns a trial's reports into rows. The only package that imports Ray, and only in the modules
that need it: `sweep.engine.local` and `sweep.engine.recorder` do not.
"""

from sweep.engine.moved import keep_old_paths
from sweep.ray_env import set_ray_environment

set_ray_environment()
keep_old_paths()
