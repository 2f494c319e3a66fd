"""What a pipeline may hand the SDK by mistake: only a wrong step_type raises; odd details,
ids, reasons and counts are recorded as well as they can be."""

from __future__ import annotations

import math
import warnings

import pytest

import xray
from conftest import step_named
from xray import XRay


def test_a_wrong_step_type_raises_value_error_naming_the_six(pipeline):
    with XRay(pipeline).run() as run:
        with pytest.raises(ValueError) as caught:
            run.step("filter", step_type="filtering")
    message = str(caught.value)
    for name in xray.STEP_TYPES:
        assert name in message
    assert "filtering" in message
    with pytest.raises(ValueError):
        xray.step(step_type="sort")
    with pytest.raises(ValueError):

        @xray.step(step_type="Filter ")
        def f():
            pass


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque 7>"


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_what_json_cannot_encode_is_kept_as_its_repr(api, pipeline):
    details = {
        "obj": Opaque(),
        "set": {3},
        "bytes": b"ab",
        "nested": {"list": [1, Opaque(), (2, 3)], "nan": math.nan},
        1: "int key",
        (1, 2): "tuple key",
        None: "none key",
        "big": 2**70,
        "bad": BadRepr(),
    }
    with XRay(pipeline, capture="full").run() as run:
        with run.step("filter", step_type="filter") as step:
            step.reject("a", "odd", details)
            step.reject("b", "odd", Opaque())
            step.accept("c", {"x": float("inf")})
            step.set_attribute("obj", Opaque())
            step.decide("a", "not a number", {"o": Opaque()})
        run.set_output({"o": Opaque()})

    stored = api.run(run.id)
    assert stored["output"] == {"o": "<Opaque 7>"}
    step = step_named(stored, "filter")
    samples = {s["item_id"]: s["details"] for s in step["rejections"]["odd"]["samples"]}
    assert samples["a"] == {
        "obj": "<Opaque 7>",
        "set": "{3}",
        "bytes": "b'ab'",
        "nested": {"list": [1, "<Opaque 7>", [2, 3]], "nan": None},
        "1": "int key",
        "(1, 2)": "tuple key",
        "null": "none key",
        "big": str(2**70),
        "bad": "<unrepresentable BadRepr>",
    }
    assert samples["b"] == "<Opaque 7>"
    assert step["acceptances"]["samples"] == [{"item_id": "c", "details": {"x": None}}]
    assert step["attributes"] == {"obj": "<Opaque 7>"}
    assert step["decision"]["score"] is None
    assert step["decision"]["details"] == {"o": "<Opaque 7>"}


def test_huge_details_are_capped_with_the_marker(api, pipeline):
    with XRay(pipeline).run() as run:
        with run.step("filter", step_type="filter") as step:
            step.reject("huge", "too_big", {"blob": "x" * 100_000, "list": list(range(50_000))})
    sample = step_named(api.run(run.id), "filter")["rejections"]["too_big"]["samples"][0]
    details = sample["details"]
    assert details["_xray_truncated"] is True
    assert details["limit_bytes"] == 4096
    assert details["preview"].startswith('{"blob":"xxxx')
    assert len(details["preview"]) <= 2048


def test_ids_that_are_not_str(api, pipeline):
    with XRay(pipeline, capture="full").run() as run:
        with run.step("filter", step_type="filter") as step:
            step.reject(42, "r")
            step.reject(-7, "r")
            step.reject(2**80, "r")
            step.reject(1.5, "r")
            step.reject(("sku", 9), "r")
            step.reject(None, "r")
            step.reject(True, "r")
            step.accept(0)
            step.reject("", "r")
            step.reject("a" * 600, 404)  # a reason that is not a str either
    step = step_named(api.run(run.id), "filter")
    ids = sorted(s["item_id"] for s in step["rejections"]["r"]["samples"])
    assert ids == sorted(["42", "-7", str(2**80), "1.5", "('sku', 9)", "None", "True", "(empty)"])
    long = step["rejections"]["404"]["samples"][0]["item_id"]
    assert long.endswith("…") and len(long.encode()) <= 512
    assert step["acceptances"]["samples"][0]["item_id"] == "0"
    assert step["rejections"]["r"]["count"] == 8


def test_odd_counts_and_settings_never_raise(api, pipeline):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = XRay(pipeline, offline_mode="bufer", capture="everything")
    assert any("offline mode" in str(w.message) for w in caught)
    assert any("capture" in str(w.message) for w in caught)
    with client.run(input=Opaque(), correlation_id=12345) as run:
        with run.step(7, step_type="filter") as step:
            step.set_input_count(-1)
            step.set_output_count("many")
            step.reject("a", "r")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning turned error is still never raised
            with run.step("s", step_type="rank", capture="most") as s2:
                s2.accept("x")
    stored = api.run(run.id)
    assert stored["input"] == "<Opaque 7>"
    assert stored["correlation_id"] == "12345"
    step = step_named(stored, "7")
    assert (step["input_count"], step["output_count"]) == (1, 0)
    assert step_named(stored, "s")["capture"] == "sample"


def test_huge_inputs_and_outputs_are_capped_without_converting_them_whole(api, pipeline):
    catalog = [{"id": i, "title": "case " * 10, "price": i * 0.5} for i in range(50_000)]

    @xray.step(step_type="filter")
    def filter_candidates(candidates):
        return candidates

    with XRay(pipeline).run(input={"catalog": catalog}) as run:
        filter_candidates(catalog)
        with run.step("attrs", step_type="transform") as step:
            step.set_attribute("all", catalog)
    stored = api.run(run.id)
    assert stored["input"]["_xray_truncated"] is True
    f = step_named(stored, "filter_candidates")
    for value in (f["input"], f["output"]):
        assert value["_xray_truncated"] is True
        assert value["limit_bytes"] == 32 * 1024
    assert f["input"]["preview"].startswith('{"candidates":[{"id":0,')
    assert f["output"]["preview"].startswith('[{"id":0,')
    assert (f["input_count"], f["output_count"]) == (50_000, 50_000)
    attr = step_named(stored, "attrs")["attributes"]["all"]
    assert attr["_xray_truncated"] is True and attr["limit_bytes"] == 4096
