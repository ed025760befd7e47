"""A real multi-node Ray (`ray.cluster_utils.Cluster`: a head and worker nodes on this machine, each its own
raylet) with `sweep run --address` as the driver. A node is lost the way a spot node is: its raylet killed
by pid. Its trial goes on elsewhere from its checkpoint; no other trial fails; no row is lost or doubled."""

from __future__ import annotations

import re
import shutil

import pyarrow.parquet as pq
import pytest
import torch

from sweep.core.train import train_trial
from sweep.spec import load_spec
from sweep.store import ResultsStore, query

from . import drivers
from .clusters import lose, start_cluster
from .conftest import needs_fashion, write_spec

pytestmark = [pytest.mark.slow, needs_fashion]


@pytest.fixture(scope="module")
def cluster():
    built, temp = start_cluster()
    try:
        yield built, temp
    finally:
        built.shutdown()  # exactly this cluster's processes
        shutil.rmtree(temp, ignore_errors=True)


def add_node(cluster):
    built, temp = cluster
    return built.add_node(num_cpus=1, temp_dir=temp)


SINGLE = """
name: lost-node
dataset: {name: fashion_mnist, subset: 20000, test_subset: 2000}
model: {widths: [512, 256], densities: 0.3, dropout: 0.1}
train: {optimizer: momentum, lr: 0.05, epochs: 14, batch_size: 64}
egf: {samples: 512}
ray: {max_concurrent_trials: 1}
"""


def last_epoch(results, name: str) -> int:
    files = list((results / "epochs" / f"sweep={name}").glob("part-*.parquet"))
    try:
        return max(
            (max(pq.read_table(f, columns=["epoch"]).column("epoch").to_pylist()) for f in files), default=-1
        )
    except OSError:  # a file being replaced
        return -1


def test_a_trial_on_a_lost_node_continues_on_another_from_its_checkpoint(cluster, tmp_path, fashion):
    first = add_node(cluster)
    spec = write_spec(tmp_path / "s.yaml", SINGLE)
    results = tmp_path / "r"
    proc = drivers.start("run", spec, "--results", results, "--address", cluster[0].address)
    drivers.wait_for(lambda: last_epoch(results, "lost-node") >= 5, proc, timeout=300, every=0.1)
    reported = last_epoch(results, "lost-node")
    lose(first)  # before the spare joins: the trial cannot end on its first node meanwhile
    spare = add_node(cluster)  # where the trial goes next
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert re.search(r"\[retry\] trial \w+ failed \(.*node.*\); attempt 2 of 3 continues", output), output
    resumed = int(re.search(r"continues after epoch (\d+) on node (\w+)", output).group(1))
    assert resumed >= reported - 1  # at most one epoch trained again (checkpoints after every epoch)

    store = ResultsStore(results)
    (trial,) = store.rows("trials", "lost-node")
    assert trial["status"] == "done" and trial["attempts"] == 2 and trial["node_id"] == spare.node_id
    epochs = query(store, "SELECT * FROM epochs ORDER BY epoch")
    assert list(epochs["epoch"]) == list(range(15))  # one row per epoch, none twice
    assert query(store, "SELECT count(*) AS n FROM layers")["n"].item() == 15 * 3

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the worker trained (resources.cpu: 1)
    try:
        uninterrupted = train_trial(load_spec(spec).trial, data=fashion)
    finally:
        torch.set_num_threads(threads)
    for report in uninterrupted.epochs[1:]:  # the same numbers as a run that never stopped
        row = epochs.iloc[report.epoch]
        for name in ("train_loss", "test_acc", "test_loss", "val_acc", "egf1", "egf2", "gf2"):
            assert row[name] == report.metrics[name], (report.epoch, name)


SEARCH = """
name: lost-node-search
kind: snas
dataset: {name: fashion_mnist, subset: 6000, test_subset: 1000}
model: {widths: [128]}
train: {optimizer: momentum, lr: 0.05, epochs: 12, batch_size: 64}
egf: {samples: 256}
search: {num_samples: 8, sampler: random, density_levels: [0.3, 1.0], warm_start_density: null, seed: 1}
ray: {max_concurrent_trials: 2}
"""


def test_a_lost_node_fails_no_other_trial_of_a_search_and_repeats_are_still_replayed(cluster, tmp_path):
    nodes = [add_node(cluster), add_node(cluster)]
    spec = write_spec(tmp_path / "s.yaml", SEARCH)
    results = tmp_path / "r"
    proc = drivers.start("run", spec, "--results", results, "--address", cluster[0].address)
    drivers.wait_for(lambda: drivers.done_rows(results, "lost-node-search"), proc, timeout=300, every=0.1)
    add_node(cluster)
    lose(nodes[0])
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    trials = ResultsStore(results).rows("trials", "lost-node-search")
    assert trials and all(t["status"] == "done" for t in trials), [t["error"] for t in trials]
    assert len(trials) <= 4  # a space of 4 configurations: one row each, whatever was proposed
    ended = re.findall(r"\] (done|replayed|error)\s", output)
    assert len(ended) == 8 and "error" not in ended, output
    assert ended.count("replayed") == 8 - len(trials)  # every repeat replayed, none trained twice
