"""Runs trials and records them: in this process (`sweep train`) or on Ray Tune (the tuner and its stages,
the worker trainable, callbacks, Ray sessions, `submit`), and the recorder that turns a trial's reports into
rows. The only package that imports Ray, and only in the modules that need it: `sweep.engine.local` and
`sweep.engine.recorder` do not.
"""

import os

for _key, _value in {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0: no tables of Tune's own; progress is ours
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # the Parquet tables are the record, not result.json
}.items():
    os.environ.setdefault(_key, _value)
