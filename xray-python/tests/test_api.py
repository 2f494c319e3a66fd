"""The SDK's calls, read back over the HTTP API: failures, decisions, attributes, correlation,
decorators, fail mode, and delivery at interpreter exit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import xray
from conftest import step_named
from xray import XRay, XRayError


def test_an_exception_fails_the_step_and_the_run_and_goes_on_unchanged(api, pipeline):
    boom = KeyError("price")
    with pytest.raises(KeyError) as caught:
        with XRay(pipeline).run(input={"q": 1}) as run:
            with run.step("filter", step_type="filter") as step:
                step.reject("a", "too_high")
                raise boom
    assert caught.value is boom
    assert caught.value.__traceback__ is not None

    stored = api.run(run.id)
    assert stored["status"] == "failed"
    assert stored["error"] == "KeyError: 'price'"
    step = step_named(stored, "filter")
    assert step["error"] == "KeyError: 'price'"
    assert step["rejections"]["too_high"]["count"] == 1


def test_an_exception_caught_inside_the_run_fails_only_the_step(api, pipeline):
    with XRay(pipeline).run() as run:
        try:
            with run.step("fetch", step_type="retrieve"):
                raise TimeoutError()
        except TimeoutError:
            pass
        run.set_output("recovered")
    stored = api.run(run.id)
    assert stored["status"] == "completed"
    assert stored["output"] == "recovered"
    assert step_named(stored, "fetch")["error"] == "TimeoutError"


def test_decide_attributes_io_counts_and_correlation(api, pipeline):
    client = XRay(pipeline, capture="full")
    with client.run(
        input={"title": "iPhone"}, metadata={"deploy": "v2"}, correlation_id="req-7f3a"
    ) as run:
        assert xray.current_run() is run
        with run.step("rank", step_type="rank") as step:
            assert xray.current_step() is step
            step.set_input([3, 1, 2])
            step.set_output([1, 2, 3])
            step.set_attribute("model", "bm25")
            step.set_attribute("threshold", 0.5)
            step.set_input_count(3)
            step.set_output_count(3)
        with run.step("select", step_type="select", capture="minimal") as step:
            step.decide("case_1", 0.93, {"why": "best relevance", "runner_up": ["case_2", 0.8]})
        run.set_output({"selected": "case_1"})
    assert not xray.current_run().is_recording
    assert not xray.current_step().is_recording

    stored = api.run(run.id)
    assert stored["metadata"] == {"deploy": "v2"}
    assert stored["correlation_id"] == "req-7f3a"
    assert stored["output"] == {"selected": "case_1"}
    assert [s["name"] for s in stored["steps"]] == ["rank", "select"]
    rank = step_named(stored, "rank")
    assert rank["capture"] == "full"
    assert rank["input"] == [3, 1, 2] and rank["output"] == [1, 2, 3]
    assert rank["attributes"] == {"model": "bm25", "threshold": 0.5}
    assert (rank["input_count"], rank["output_count"]) == (3, 3)
    select = step_named(stored, "select")
    assert select["capture"] == "minimal"
    assert select["decision"] == {
        "selected": "case_1",
        "score": 0.93,
        "details": {"why": "best relevance", "runner_up": ["case_2", 0.8]},
    }
    assert select["output_count"] == 1
    assert api.get(f"/runs?correlation_id=req-7f3a&pipeline={pipeline}")["runs"][0]["run_id"] == run.id


def test_decorators_record_arguments_results_counts_and_failures(api, pipeline):
    @xray.step(step_type="filter")
    def filter_candidates(candidates, max_price):
        kept = []
        for c in candidates:
            if c["price"] > max_price:
                xray.current_step().reject(c["id"], "price_too_high", {"price": c["price"]})
            else:
                xray.current_step().accept(c["id"])
                kept.append(c)
        return kept

    @xray.step(name="pick", step_type="select")
    def select_best(kept):
        if not kept:
            raise LookupError("no candidate left")
        xray.current_step().decide(kept[0]["id"], 0.7)
        return kept[0]["id"]

    @xray.run(pipeline=pipeline)
    def select_competitor(title, catalog):
        return select_best(filter_candidates(catalog, 100))

    catalog = [{"id": "a", "price": 50}, {"id": "b", "price": 150}, {"id": "c", "price": 90}]
    assert select_competitor("iPhone", catalog) == "a"
    with pytest.raises(LookupError):
        select_competitor("nothing", [{"id": "z", "price": 500}])

    runs = api.runs(pipeline)
    assert len(runs) == 2
    ok = next(r for r in runs if r["status"] == "completed")
    assert ok["input"] == {"title": "iPhone", "catalog": catalog}
    assert ok["output"] == "a"
    full = api.run(ok["run_id"])
    f = step_named(full, "filter_candidates")
    assert f["input"] == {"candidates": catalog, "max_price": 100}
    assert f["output"] == [catalog[0], catalog[2]]
    assert (f["input_count"], f["output_count"]) == (3, 2)
    assert f["rejections"]["price_too_high"]["samples"] == [{"item_id": "b", "details": {"price": 150}}]
    assert step_named(full, "pick")["decision"]["selected"] == "a"

    failed = next(r for r in runs if r["status"] == "failed")
    assert failed["error"] == "LookupError: no candidate left"
    pick = step_named(api.run(failed["run_id"]), "pick")
    assert pick["error"] == "LookupError: no candidate left"


def test_a_step_outside_any_run_is_a_run_of_its_own(api):
    with xray.step("normalise", step_type="transform") as step:
        assert step.is_recording
        step.set_output({"n": 1})
    assert xray.flush(10.0)
    hits = api.get("/steps?name=normalise&limit=1000")["steps"]
    hit = next(h for h in hits if h["step_id"] == step.id)
    run = api.run(hit["run_id"])
    assert run["pipeline"] == "default" and run["output"] == {"n": 1}


def test_fail_mode_raises_delivery_failures_but_never_masks_the_pipelines_error(pipeline):
    down = XRay(
        pipeline, endpoint="http://127.0.0.1:9", offline_mode="fail", max_attempts=1, http_timeout_ms=500
    )
    with pytest.raises(XRayError):
        with down.run(input=1):
            pass
    with pytest.raises(ZeroDivisionError):
        with down.run(input=2):
            1 / 0


def test_silent_mode_drops_and_counts(pipeline):
    down = XRay(pipeline, endpoint="http://127.0.0.1:9", offline_mode="silent", max_attempts=1)
    before = down.stats()["dropped"]
    with down.run(input=1) as run:
        with run.step("s", step_type="generate"):
            pass
    down.flush(5.0)
    assert down.stats()["dropped"] >= before + 2


def test_an_exiting_interpreter_delivers_what_is_queued(api, pipeline):
    script = (
        "from xray import XRay\n"
        f"with XRay({pipeline!r}).run(input={{'at': 'exit'}}) as run:\n"
        "    with run.step('only', step_type='generate') as s:\n"
        "        s.set_output('done')\n"
    )
    env = dict(os.environ, XRAY_BATCH_INTERVAL_MS="60000")  # nothing leaves before exit
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    runs = api.runs(pipeline)
    assert len(runs) == 1 and runs[0]["input"] == {"at": "exit"}
    assert runs[0]["status"] == "completed"
    assert step_named(api.run(runs[0]["run_id"]), "only")["output"] == "done"


def test_stats_count_what_was_sent(pipeline):
    before = xray.stats()["sent"]
    with XRay(pipeline).run():
        pass
    assert xray.flush(10.0)
    assert xray.stats()["sent"] >= before + 2
    assert set(xray.stats()) == {"sent", "spooled", "resent", "dropped", "failed"}


def test_the_module_run_is_a_context_manager_too(api, pipeline):
    with xray.run(pipeline, input={"q": "x"}, metadata={"who": "cron"}) as run:
        with xray.step("only", step_type="generate") as step:
            assert xray.current_step() is step and xray.current_run() is run
    stored = api.run(run.id)
    assert stored["pipeline"] == pipeline
    assert stored["input"] == {"q": "x"} and stored["metadata"] == {"who": "cron"}
    assert [s["name"] for s in stored["steps"]] == ["only"]


def test_threads_recording_into_one_step_count_exactly(api, pipeline):
    from concurrent.futures import ThreadPoolExecutor

    with XRay(pipeline).run() as run:
        with run.step("filter", step_type="filter") as step:

            def work(t):
                for i in range(2_000):
                    step.reject(f"{t}-{i}", "r", {"t": t, "i": i})

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(work, range(4)))
    reason = step_named(api.run(run.id), "filter")["rejections"]["r"]
    assert reason["count"] == 8_000
    assert len(reason["samples"]) == 50
    for s in reason["samples"]:
        t, i = s["item_id"].split("-")
        assert s["details"] == {"t": int(t), "i": int(i)}


def test_a_repr_that_records_into_the_same_step_is_counted_too(api, pipeline):
    with XRay(pipeline, capture="full").run() as run:
        with run.step("filter", step_type="filter") as step:

            class Sneaky:
                def __repr__(self) -> str:
                    step.reject("inner", "from_repr")
                    return "<Sneaky>"

            step.reject("outer", "odd", {"s": Sneaky()})
    stored = step_named(api.run(run.id), "filter")
    assert stored["rejections"]["odd"]["samples"] == [{"item_id": "outer", "details": {"s": "<Sneaky>"}}]
    assert stored["rejections"]["from_repr"]["count"] == 1


def test_shutdown_delivers_and_later_runs_never_raise(api, pipeline):
    script = (
        "import xray\n"
        "from xray import XRay\n"
        f"with XRay({pipeline!r}).run(input='before') as run:\n"
        "    pass\n"
        "assert xray.shutdown(10.0) is True\n"
        "assert xray.stats()['sent'] == 2, xray.stats()\n"
        f"with XRay({pipeline!r}).run(input='after') as run:\n"
        "    with run.step('s', step_type='rank') as s:\n"
        "        s.accept(1)\n"
        "assert xray.flush(1.0) is False  # shut down: nothing more goes out\n"
    )
    env = dict(os.environ, XRAY_OFFLINE_MODE="silent")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    runs = api.runs(pipeline)
    assert [r["input"] for r in runs] == ["before"]
