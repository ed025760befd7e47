"""The spec's vocabulary: the values each choice field allows, and the bounds of every integer setting."""

from typing import Any

DATASETS = ("fashion_mnist", "mnist", "cifar10", "cifar100", "svhn", "synthetic", "image_folder", "factory")
CHANNELS = ("grey", "rgb", "rgba")
# The project's own MLP and CNN (`core/models.py`), its CIFAR Wide ResNet (`core/wrn.py`), and the user's
# model: a torchvision or timm builder by name, or a `package.module:function` factory (`core/zoo.py`).
BUILT_IN = ("mlp", "cnn")
FAMILIES = (*BUILT_IN, "wrn", "torchvision", "timm", "factory")
PRECISIONS = ("fp32", "bf16", "fp16")
ACTIVATIONS = ("relu", "leaky_relu", "prelu", "selu", "elu", "tanh", "sigmoid", "swish", "gelu")
INITS = ("kaiming_uniform", "kaiming_normal", "xavier_uniform")
MASKS = ("uniform", "erk", "dense")
BACKENDS = ("auto", "masked", "sparse")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "step", "cosine")
AUGMENTS = ("none", "flip_crop")
DEVICES = ("auto", "cpu", "cuda")
KINDS = ("single", "snas", "sc_sdc", "grid")
SAMPLERS = ("tpe", "nsga2", "random")
METRICS = ("val_acc", "test_acc")
SCHEDULERS = ("none", "asha")
DEFAULT_LEVELS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# How a trial's masks are chosen: at random, by pruning at initialisation, by dynamic sparse training, or by
# magnitude pruning while it trains. `scope: global` lets a method allocate across layers.
PRUNING_AT_INIT = ("snip", "grasp", "synflow")
METHODS = ("random", "shuffle", *PRUNING_AT_INIT, "set", "rigl", "gmp", "imp")
GLOBAL_SCOPE = ("shuffle", *PRUNING_AT_INIT, "gmp", "imp")
MASKS_CHANGE = ("set", "rigl", "gmp", "imp")  # masks that change while the trial trains
SCOPES = ("layer", "global")
REGROWN = ("keep", "reset")  # set, rigl: a weight one update drops and regrows keeps its value, or restarts
# Each method's own default, as its paper has it: pruning at init ranks all layers together; RigL keeps a
# weight that one update drops and regrows (the reference code does).
GLOBAL_BY_DEFAULT = ("snip", "grasp", "synflow")
MATCHES = ("layer", "total")  # SC-SDC: a dense partner matches each layer's active weights, or the total
# Every integer setting has an upper bound that the trainer and the int64 tables hold. Seeds stay below
# 2**32, numpy's seed range, which Optuna's samplers use (torch's generators then take seed * 1_000_003 plus a
# stream number, well under 2**63); sizes and counts stay within int32, which tensor shapes and the products
# of widths in the tables hold with room.
MAX_SEED = 2**32 - 1
MAX_COUNT = 2**31 - 1
MAX_WEIGHTS = 2**62


def opt(**rules: Any) -> dict[str, Any]:
    """A field's rules (`choices`, bounds, `nonempty`), as `sweep.spec.convert` reads them."""
    return {"rules": rules}
