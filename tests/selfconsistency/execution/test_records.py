"""Typed run records: the fields and their types are the schema, a version says which, old files still load.

Each record class of the comparisons (staircase run, finite-sample run, image cell) is checked by one property
test: a record survives to_dict/from_dict unchanged, every field it requires is named when missing, a field of
the wrong type is named, a version newer than the code's is refused, a version-0 file (written before records
had a version) loads. Then the pieces: the dict access of before (deprecated), fields kept from newer files.
"""

import json
import math

import pytest

from selfconsistency.execution import BadRecord, Record, RecordProblem, read_record
from selfconsistency.groundtruth import BenchConfig, FiniteConfig, FiniteRecord, StaircaseRecord
from selfconsistency.images.records import CellConfig, CellRecord

STAIRCASE = StaircaseRecord(
    estimator="cpc",
    seed=1,
    config=BenchConfig(levels=(2.0, 4.0), steps_per_level=3),
    diverged_at=None,
    estimates=[0.5, None, 1.0, 1.5, 2.0, 2.5],
    seconds=1.5,
    kind="lower bound",
)
FINITE = FiniteRecord(
    task="1v1-normal-0.75",
    true_mi=0.4133,
    estimator="smile:5",
    seed=0,
    config=FiniteConfig(n=1000),
    value=0.39,
    steps=200,
    seconds=2.0,
    stopped="patience",
    flags=["overfitting"],
)
CELL = CellRecord(
    estimator="cpc",
    dataset="digits",
    measure="rows",
    t=4,
    seed=0,
    estimate=1.25,
    diverged=None,
    config=CellConfig(image_shape=(1, 8, 8), dp_offset=3, dataset="digits", epochs=1, batch_size=64),
)
RECORDS = {"staircase": STAIRCASE, "finite": FINITE, "cell": CELL}
# what each record cannot do without, and a field with a wrong-typed value
REQUIRED = {
    "staircase": ("estimator", "seed", "config", "diverged_at", "estimates", "seconds"),
    "finite": ("task", "true_mi", "estimator", "seed", "config", "value", "steps", "seconds", "stopped"),
    "cell": ("estimator", "dataset", "measure", "t", "seed", "estimate", "diverged", "config"),
}
WRONG = {"staircase": ("seed", "0"), "finite": ("true_mi", "0.41"), "cell": ("estimate", [1.0])}


@pytest.mark.parametrize("kind", list(RECORDS))
def test_every_record_class_round_trips_and_names_what_is_wrong(kind):
    rec = RECORDS[kind]
    cls = type(rec)
    data = json.loads(json.dumps(rec.to_dict()))  # what a file holds
    assert data["version"] == cls.VERSION == 1
    assert cls.from_dict(data) == rec
    for name in REQUIRED[kind]:
        with pytest.raises(RecordProblem, match=f"field '{name}' is missing"):
            cls.from_dict({k: v for k, v in data.items() if k != name})
    name, bad = WRONG[kind]
    with pytest.raises(RecordProblem, match=f"field '{name}' is a"):
        cls.from_dict({**data, name: bad})
    with pytest.raises(RecordProblem, match="written by a newer selfconsistency"):
        cls.from_dict({**data, "version": 2})
    legacy = {k: v for k, v in data.items() if k != "version"}  # a file from before records had a version
    assert cls.from_dict(legacy) == rec
    with pytest.raises(RecordProblem, match="not a record"):
        cls.from_dict([data])


def test_nested_configs_are_checked_and_records_check_their_own_consistency():
    data = STAIRCASE.to_dict()
    with pytest.raises(RecordProblem, match=r"config: field 'steps_per_level' is a str"):
        StaircaseRecord.from_dict({**data, "config": {**data["config"], "steps_per_level": "3"}})
    with pytest.raises(RecordProblem, match=r"field 'config' is not a BenchConfig \(task must be one of"):
        StaircaseRecord.from_dict({**data, "config": {**data["config"], "task": "normal"}})
    with pytest.raises(RecordProblem, match=r"unknown field\(s\) \['colour'\] in a BenchConfig"):
        StaircaseRecord.from_dict({**data, "config": {**data["config"], "colour": "red"}})
    with pytest.raises(RecordProblem, match="5 per-step estimates, the protocol has 6 steps"):
        StaircaseRecord.from_dict({**data, "estimates": data["estimates"][:5]})
    diverged = StaircaseRecord.from_dict({**data, "estimates": data["estimates"][:2], "diverged_at": 2})
    assert diverged.estimates == [0.5, None]  # a diverged run stops early
    with pytest.raises(RecordProblem, match=r"field 'estimates' holds True at 1, not a number"):
        StaircaseRecord.from_dict({**data, "estimates": [0.5, True, 1.0, 1.5, 2.0, 2.5]})
    with pytest.raises(RecordProblem, match=r"image_shape \[8, 8\] is not an image shape"):
        CellRecord.from_dict({**CELL.to_dict(), "config": {"image_shape": [8, 8], "dp_offset": 3}})
    # fp32 is the paper's precision: left out of the stored config, as before the option existed
    assert "precision" not in data["config"] and BenchConfig.from_dict(data["config"]).precision == "fp32"


def test_fields_of_a_newer_file_are_kept_and_written_back():
    data = {**FINITE.to_dict(), "new_metric": 3.5}
    rec = FiniteRecord.from_dict(data)
    assert rec.extra == {"new_metric": 3.5} and rec.to_dict()["new_metric"] == 3.5


def test_the_dict_access_of_before_still_reads_a_record_with_a_warning():
    with pytest.warns(DeprecationWarning, match=r"read record.estimates, not record\['estimates'\]"):
        assert STAIRCASE["estimates"] == STAIRCASE.estimates
    with pytest.warns(DeprecationWarning):
        assert STAIRCASE["config"]["steps_per_level"] == 3  # nested configs as their JSON
    with pytest.warns(DeprecationWarning), pytest.raises(KeyError):
        STAIRCASE["no_such_field"]
    with pytest.warns(DeprecationWarning):
        assert STAIRCASE.get("ensemble_size", "none") is None and CELL.get("nope", 7) == 7


def test_a_bad_file_is_a_bad_record_naming_the_file_and_the_field(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({k: v for k, v in FINITE.to_dict().items() if k != "stopped"}))
    with pytest.raises(BadRecord, match=f"{path}: field 'stopped' is missing"):
        read_record(path, record=FiniteRecord)
    nan = {**FINITE.to_dict(), "value": None}  # a NaN value is written as null: an undefined estimate, not bad
    path.write_text(json.dumps(nan))
    assert read_record(path, record=FiniteRecord).value is None


def test_records_are_dataclasses_with_a_version():
    assert all(isinstance(r, Record) for r in RECORDS.values())
    assert math.isclose(FiniteRecord.coerce(FINITE.to_dict()).true_mi, 0.4133)
    assert FiniteRecord.coerce(FINITE) is FINITE
