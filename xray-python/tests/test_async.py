"""Twenty asyncio runs at once, with awaits inside their steps: each run gets only its own
events (the current run and step are context variables, one per task)."""

from __future__ import annotations

import asyncio

import xray
from conftest import step_named

ITEMS = 30


def test_concurrent_async_runs_never_mix_their_events(api, pipeline):
    @xray.step(step_type="filter")
    async def filter_items(items, topic):
        kept = []
        for i in items:
            await asyncio.sleep(0)  # every item: other tasks run in between
            if i % 3 == 0:
                xray.current_step().reject(f"{topic}-{i}", "div3", {"topic": topic})
            else:
                xray.current_step().accept(f"{topic}-{i}", {"topic": topic})
                kept.append(i)
        return kept

    @xray.run(pipeline=pipeline)
    async def write(topic):
        kept = await filter_items(list(range(ITEMS)), topic)
        with xray.step("pick", step_type="select") as pick:
            await asyncio.sleep(0.001)
            xray.current_step().decide(f"{topic}-{kept[0]}", 0.5, {"topic": topic})
            assert xray.current_step() is pick
        if topic == "t13":
            raise RuntimeError("model timeout in t13")
        return {"topic": topic, "kept": len(kept)}

    async def main():
        return await asyncio.gather(*(write(f"t{i}") for i in range(20)), return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[13], RuntimeError)

    runs = api.runs(pipeline)
    assert len(runs) == 20
    for summary in runs:
        topic = summary["input"]["topic"]
        run = api.run(summary["run_id"])
        if topic == "t13":
            assert run["status"] == "failed" and run["error"] == "RuntimeError: model timeout in t13"
        else:
            assert run["status"] == "completed"
            assert run["output"] == {"topic": topic, "kept": 20}
        assert [s["name"] for s in run["steps"]] == ["filter_items", "pick"]
        f = step_named(run, "filter_items")
        assert (f["input_count"], f["output_count"]) == (ITEMS, 20)
        assert f["rejections"]["div3"]["count"] == 10
        samples = f["rejections"]["div3"]["samples"] + f["acceptances"]["samples"]
        assert len(samples) == ITEMS
        for s in samples:
            assert s["item_id"].startswith(topic + "-"), (topic, s)
            assert s["details"] == {"topic": topic}
        decision = step_named(run, "pick")["decision"]
        assert decision["selected"] == f"{topic}-1"
        assert decision["details"] == {"topic": topic}
