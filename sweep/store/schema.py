"""The tables' schemas: the columns users can count on, with their Arrow types.

The schema version is written into every file's metadata. Metrics that appear late go in long tables, not in
new wide columns.
"""

from __future__ import annotations

import pyarrow as pa

# 2 adds trials.node_id, attempts, method, scope, method_settings; epochs.level; layers.mask_changed.
# 3 adds trials.generation and superseded (sweeps that grow).
# 4 adds trials.model_name and model_kwargs, layers.module (models of any family), capacity_mismatch (SC-SDC).
SCHEMA_VERSION = "4"
_f64, _i64, _str, _bool = pa.float64(), pa.int64(), pa.string(), pa.bool_()
_time = pa.timestamp("us", tz="UTC")

# The gradient-flow measures, in `trials` (final epoch) and in `epochs` (every epoch).
_FLOW = [(name, _f64) for name in ("egf1", "egf2", "egf", "egf1_pw", "egf2_pw", "gf1", "gf2")]

TRIALS = pa.schema(
    [
        ("trial_key", _str),
        ("kind", _str),
        ("status", _str),
        ("error", _str),
        ("role", _str),
        ("pair_id", _str),
        ("capacity_mismatch", _f64),
        ("dataset", _str),
        ("subset", _i64),
        ("test_subset", _i64),
        ("val_fraction", _f64),
        ("family", _str),
        ("model_name", _str),
        ("model_kwargs", _str),
        ("depth", _i64),
        ("widths", pa.list_(_i64)),
        ("densities", pa.list_(_f64)),
        ("mask", _str),
        ("method", _str),
        ("scope", _str),
        ("method_settings", _str),
        ("backend", _str),
        ("layer_backends", pa.list_(_str)),
        ("activation", _str),
        ("batchnorm", _bool),
        ("dropout", _f64),
        ("skip", _bool),
        ("init", _str),
        ("init_widths", pa.list_(_i64)),
        ("optimizer", _str),
        ("lr", _f64),
        ("momentum", _f64),
        ("nesterov", _bool),
        ("weight_decay", _f64),
        ("schedule", _str),
        ("batch_size", _i64),
        ("augment", _str),
        ("epochs", _i64),
        ("epochs_done", _i64),
        ("seed", _i64),
        ("egf_samples", _i64),
        ("egf_mode", _str),
        ("active_weights", _i64),
        ("total_weights", _i64),
        ("total_params", _i64),
        ("density", _f64),
        ("test_acc", _f64),
        ("test_loss", _f64),
        ("val_acc", _f64),
        ("best_val_acc", _f64),
        *_FLOW,
        ("egf1_mean", _f64),
        ("egf2_mean", _f64),
        ("gf1_mean", _f64),
        ("gf2_mean", _f64),
        ("pareto", _bool),
        ("feasible", _bool),
        ("generation", _i64),
        ("superseded", _bool),
        ("wall_s", _f64),
        ("device", _str),
        ("node", _str),
        ("node_id", _str),
        ("attempts", _i64),
        ("started_at", _time),
        ("ended_at", _time),
        ("torch_version", _str),
        ("ray_version", _str),
        ("sweep_version", _str),
        ("config", _str),
    ]
)
EPOCHS = pa.schema(
    [
        ("trial_key", _str),
        ("epoch", _i64),
        ("level", _i64),
        ("train_loss", _f64),
        ("train_acc", _f64),
        ("val_acc", _f64),
        ("test_loss", _f64),
        ("test_acc", _f64),
        *_FLOW,
        ("lr", _f64),
        ("seconds", _f64),
        ("samples_per_s", _f64),
    ]
)
LAYERS = pa.schema(
    [
        ("trial_key", _str),
        ("epoch", _i64),
        ("layer", _i64),
        ("module", _str),
        ("kind", _str),
        ("backend", _str),
        ("shape", pa.list_(_i64)),
        ("density", _f64),
        ("active_weights", _i64),
        ("total_weights", _i64),
        ("g_masked_l1", _f64),
        ("g_masked_l2", _f64),
        ("g_l1", _f64),
        ("g_l2", _f64),
        ("mask_changed", _f64),
    ]
)
TABLES = {"trials": TRIALS, "epochs": EPOCHS, "layers": LAYERS}


def sweep_column() -> pa.Field:
    """The partition column: one partition per sweep."""
    return pa.field("sweep", _str)
