"""The architecture note's Python snippets, run as written (only `from sdk import XRay` → `from
xray import XRay`), and every field they store read back: the three of "5. Developer
Experience", then the step-type convention (section 3) and the capture levels (section 4). Last,
the README's own Python example."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

from conftest import step_named

SNIPPETS = Path(__file__).parent / "snippets"


def snippet(name: str) -> str:
    return (SNIPPETS / name).read_text()


def note_path() -> Path | None:
    """The design note, when this checkout has it beside it (`../shared/design/`)."""
    given = os.environ.get("XRAY_DESIGN_NOTE")
    if given:
        return Path(given)
    root = Path(__file__).resolve().parents[2]
    for candidate in (root.parent / "shared" / "design" / "xray-architecture.md",):
        if candidate.exists():
            return candidate
    return None


def test_the_snippets_are_the_notes_own():
    note = note_path()
    if note is None or not note.exists():
        # The copies in snippets/ are what runs; the note is only beside some checkouts.
        return
    blocks = re.findall(r"```python\n(.*?)```", note.read_text(), re.S)
    blocks = [b.replace("from sdk import XRay", "from xray import XRay") for b in blocks]
    for name in ("minimal.py", "full.py", "offline.py", "step_type.py", "capture.py"):
        assert snippet(name) in blocks, f"{name} is the note's snippet, verbatim"


def run_snippet(name: str, namespace: dict) -> None:
    exec(compile(snippet(name), str(SNIPPETS / name), "exec"), namespace)


def test_minimal_instrumentation(api):
    data = {"product_title": "iPhone 15 Case", "max_price": 100}
    ns = {"data": data, "my_existing_code": lambda: {"selected": "laptop_stand_42", "score": 0.87}}
    run_snippet("minimal.py", ns)

    run = api.run(ns["run"].id)
    assert run["pipeline"] == "my_pipeline"
    assert run["status"] == "completed"
    assert run["input"] == data
    assert run["output"] == {"selected": "laptop_stand_42", "score": 0.87}
    assert run["error"] is None
    assert run["steps"] == []
    assert run["duration_ms"] >= 0
    assert run["started_at"] <= run["ended_at"]


def test_full_instrumentation_with_the_offline_client(api):
    # The third snippet makes the client the second one uses as `xray` (with `XRay` imported
    # as the first snippet does).
    from xray import XRay

    ns: dict = {"XRay": XRay}
    run_snippet("offline.py", ns)
    assert ns["xray"].pipeline == "pipeline"

    candidates = [
        SimpleNamespace(id=f"case_{i}", price=float(40 + 7 * i)) for i in range(30)
    ]  # prices 40..243: 9 under the threshold
    threshold = 100
    filtered = [c for c in candidates if c.price <= threshold]
    data = {"product_title": "iPhone 15 Case"}
    ns.update(data=data, candidates=candidates, threshold=threshold, filtered=filtered)
    run_snippet("full.py", ns)

    run = api.run(ns["run"].id)
    assert run["pipeline"] == "pipeline"
    assert run["status"] == "completed"
    assert run["input"] == data
    assert run["output"] is None
    assert len(run["steps"]) == 1
    step = step_named(run, "filter")
    assert step["step_type"] == "filter"
    assert step["capture"] == "sample"
    assert step["input_count"] == 30
    assert step["output_count"] == len(filtered) == 9
    assert step["error"] is None
    rejected = {c.id: c.price for c in candidates if c.price > threshold}
    assert list(step["rejections"]) == ["price_too_high"]
    reason = step["rejections"]["price_too_high"]
    assert reason["count"] == len(rejected) == 21
    # Fewer than the 50 a reason keeps: every rejected item is a sample, with its details.
    assert sorted(s["item_id"] for s in reason["samples"]) == sorted(rejected)
    for s in reason["samples"]:
        assert s["details"] == {"price": rejected[s["item_id"]]}
    assert step["acceptances"]["count"] == 9
    assert sorted(s["item_id"] for s in step["acceptances"]["samples"]) == sorted(
        c.id for c in filtered
    )
    assert step["rejection_rate"] == 21 / 30


def test_the_step_type_convention(api, pipeline):
    from xray import XRay

    with XRay(pipeline).run() as run:
        # The note's "Wrong" step (no step_type) is refused, naming the six...
        try:
            run_snippet("step_type.py", {"run": run})
            raise AssertionError("a step without a step_type is refused")
        except ValueError as e:
            assert "step_type" in str(e) and "generate, retrieve, filter, rank, select, transform" in str(e)
        # ...and its "Correct" one is recorded.
        correct = "# Correct" + snippet("step_type.py").split("# Correct")[1]
        exec(correct, {"run": run})
    stored = api.run(run.id)
    assert [(s["name"], s["step_type"]) for s in stored["steps"]] == [("filter_products", "filter")]


def test_the_capture_levels(api, pipeline):
    from xray import XRay

    with XRay(pipeline).run() as run:
        run_snippet("capture.py", {"run": run})
    stored = api.run(run.id)
    assert [(s["name"], s["step_type"], s["capture"]) for s in stored["steps"]] == [
        ("filter", "filter", "sample"),
        ("filter", "filter", "full"),
        ("filter", "filter", "minimal"),
    ]


def test_the_readme_example_runs_as_written(api):
    """The README's Python example (its "Python" section), given the candidates it filters and
    the best one it selects."""
    readme = Path(__file__).resolve().parents[2] / "README.md"
    section = readme.read_text().split("\n## Python\n", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    candidates = [
        SimpleNamespace(id=f"case_{i}", price=float(40 + 7 * i)) for i in range(30)
    ]  # prices 40..243: 9 at most 100
    best = SimpleNamespace(id="case_3", score=0.87)
    ns = {"candidates": candidates, "best": best}
    exec(compile(code, str(readme), "exec"), ns)

    run = api.run(ns["run"].id)
    assert run["pipeline"] == "competitor_selection"
    assert run["correlation_id"] == "req-7f3a"
    assert run["input"] == {"product_title": "iPhone 15 Case"}
    assert run["output"] == {"selected": "case_3"}
    assert run["status"] == "completed"
    filtered = step_named(run, "filter_candidates")
    assert filtered["step_type"] == "filter"
    assert filtered["input_count"] == 30
    assert filtered["attributes"] == {"threshold": 100}
    reason = filtered["rejections"]["price_too_high"]
    assert reason["count"] == 21
    for s in reason["samples"]:
        price = float(40 + 7 * int(s["item_id"].removeprefix("case_")))
        assert s["details"] == {"price": price, "threshold": 100}
    assert filtered["acceptances"]["count"] == 9
    selected = step_named(run, "select_best")
    assert selected["decision"] == {
        "selected": "case_3",
        "score": 0.87,
        "details": {"why": "highest relevance"},
    }
