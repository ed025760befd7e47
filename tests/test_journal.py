"""A search's Optuna journal in a bucket: only what is new goes up, a copy that differs from the bucket's is
fetched again whatever its size, a damaged line is one error naming the file and the line; and what
`sweep status` and a row file cost in requests."""

from __future__ import annotations

import os
import shutil

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweep.errors import ResultsError
from sweep.store import ResultsStore
from sweep.store.sweep_state import SweepState

from .s3server import BUCKET
from .s3server import s3 as s3  # the fixture

RESULTS = f"s3://{BUCKET}/r"
RECORD = '{"op_code": 0, "worker_id": "a", "study_name": "s", "directions": [1]}'


@pytest.mark.slow
def test_a_long_search_uploads_its_journal_about_once_and_a_new_machine_gets_all_of_it(s3):
    store = ResultsStore(RESULTS)
    local = store.study_journal("long")
    study = optuna.create_study(
        study_name="long",
        storage=JournalStorage(JournalFileBackend(local)),
        sampler=optuna.samplers.RandomSampler(0),
    )
    before = s3.bytes_in
    for _ in range(300):  # as the sweep does: the journal saved after each finished proposal (8 generations)
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
        store.save_journal("long")
    with open(local, "rb") as handle:
        journal = handle.read()
    assert s3.bytes_in - before <= 3 * len(journal)
    shutil.rmtree(os.environ["SPARSE_SWEEP_JOURNALS"])  # another machine resumes it
    with open(ResultsStore(RESULTS).study_journal("long"), "rb") as handle:
        assert handle.read() == journal


def test_a_local_copy_that_differs_from_the_bucket_is_fetched_again_whatever_its_size(s3):
    store = ResultsStore(RESULTS)
    local = store.study_journal("s")
    with open(local, "w") as handle:
        handle.write('{"op_code": 0, "worker_id": "a", "study_name": "s", "directions": [1]}\n')
    store.save_journal("s")
    with open(local) as bucket_copy:
        kept = bucket_copy.read()
    with open(local, "w") as handle:  # this machine's copy of an older sweep of the same name: longer
        handle.write('{"op_code": 0, "worker_id": "b", "study_name": "s", "directions": [2, 2]}\n')
    with open(ResultsStore(RESULTS).study_journal("s")) as handle:
        assert handle.read() == kept


@pytest.mark.parametrize("where", ["folder", "bucket"])
def test_a_damaged_journal_line_is_one_error_naming_the_file_and_the_line(s3, tmp_path, where):
    store = ResultsStore(tmp_path / "r" if where == "folder" else RESULTS)
    local = store.study_journal("s")
    with open(local, "w") as handle:
        handle.write(f'{RECORD}\n{{"op_co\n{RECORD}\n')  # Optuna stops at a damaged line before others
    store.save_journal("s")
    if where == "bucket":
        os.remove(local)  # the bucket's copy is fetched, and is damaged
    with pytest.raises(ResultsError) as error:
        store.study_journal("s")
    (line,) = str(error.value).splitlines()
    assert "s.optuna" in line and "line 2" in line and "rebuilt" in line


def test_status_on_a_bucket_takes_few_requests(s3, cli):
    store = ResultsStore(RESULTS)
    store.save_sweep_state(SweepState("a", {"kind": "sc_sdc"}, stage="done"))
    for key in ("k1", "k2"):  # a dense and a sparse trial
        store.write("trials", "a", key, [{"trial_key": key, "kind": "sc_sdc", "status": "done"}])
        store.write("epochs", "a", key, [{"trial_key": key, "epoch": 1}])
        store.write("layers", "a", key, [{"trial_key": key, "epoch": 1, "layer": 0}])
    before = s3.requests
    every = cli("status", "--results", RESULTS)
    assert every.code == 0, every.err
    assert s3.requests - before <= 10
    before = s3.requests
    one = cli("status", "a", "--results", RESULTS)
    assert one.code == 0 and "best trials" in one.out, one.err
    assert s3.requests - before <= 10


def test_a_row_file_goes_up_in_one_request(s3):
    """A file is sent when it is closed: one PUT, not a multipart upload's three requests (a trial's rows
    are three files, written as it reports)."""
    store = ResultsStore(RESULTS)
    # the first write also finds the bucket and the partition
    store.write("trials", "a", "k0", [{"trial_key": "k0", "kind": "sc_sdc", "status": "done"}])
    before = s3.requests
    for key in ("k1", "k2", "k3"):
        store.write("trials", "a", key, [{"trial_key": key, "kind": "sc_sdc", "status": "done"}])
    assert s3.requests - before == 3
    assert sorted(row["trial_key"] for row in store.rows("trials", "a")) == ["k0", "k1", "k2", "k3"]
