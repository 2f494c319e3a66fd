"""Rank provenance and versions from Python, read back over the HTTP API."""

from __future__ import annotations

import pytest

from conftest import step_named
from xray import XRay


def test_a_ranking_with_its_cut_and_an_item_that_missed_it(api, pipeline):
    with XRay(pipeline, version="3.2.1").run() as run:
        with run.step("rank", step_type="rank") as step:
            for i in range(200):
                details = {"why": "no stock"} if i == 11 else None
                step.rank(f"doc_{i}", i + 1, 1.0 - i / 200, details)
            step.rank("bad_position", 0, 0.5)
            step.rank("bad_score", 300, "high")
            step.set_cutoff(10)
        with run.step("pick", step_type="select") as pick:
            pick.decide("doc_0", 1.0)
            pick.set_runner_up("doc_1", 0.995)
    stored = api.run(run.id)
    assert stored["version"] == "3.2.1"
    rank = step_named(stored, "rank")
    assert rank["ranking"]["count"] == 202, "exact, the unstorable ones counted too"
    assert rank["ranking"]["cutoff"] == 10
    assert len(rank["ranking"]["samples"]) == 100
    assert rank["margin"] == pytest.approx(1 / 200)
    assert step_named(stored, "pick")["margin"] == pytest.approx(0.005)
    fate = api.get(f"/runs/{run.id}/items/doc_11")
    (event,) = fate["events"]
    assert event["outcome"] == "ranked"
    assert event["details"] == {"why": "no stock"}
    assert event["ranked"]["position"] == 12
    assert event["ranked"]["made_the_cut"] is False
    assert event["ranked"]["margin"] == pytest.approx(-2 / 200)
    assert [r["run_id"] for r in api.get("/runs?version=3.2.1")["runs"]] == [run.id]
