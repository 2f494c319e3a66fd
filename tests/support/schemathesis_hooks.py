"""Schemathesis hooks for the fuzz suite (tests/schemathesis.rs).

The API has rules across fields that JSON Schema cannot say, and the server refuses a body that
breaks them with a 400 naming the field. So that "data valid by the schema is accepted" stays a
check on everything else, generated bodies are mended to keep these rules — only where every
field involved is itself valid, so that invalid data stays invalid:

- a count (of a rejection reason, or of acceptances) includes its samples: count >= len(samples);
- an alert rule's `condition.more_than` is below its `last_runs` (or it could never fire);
- a step's rejection counts add up to at most 2^63 - 1;
- the steps of one run (`POST /runs`) have different `step_id`s.
"""

import schemathesis

MAX_COUNT = 9223372036854775807


def _is_int(v):
    """A whole number as JSON Schema's `integer` sees one (`3` or `3.0`)."""
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


def _mend_summary(summary):
    if not isinstance(summary, dict):
        return
    count, samples = summary.get("count"), summary.get("samples")
    if _is_int(count) and 0 <= count <= MAX_COUNT and isinstance(samples, list):
        summary["count"] = max(int(count), len(samples))


def _mend_step(step):
    if not isinstance(step, dict):
        return
    rejections = step.get("rejections")
    if isinstance(rejections, dict):
        for summary in rejections.values():
            _mend_summary(summary)
        summaries = [r for r in rejections.values() if isinstance(r, dict) and _is_int(r.get("count"))]
        if sum(int(r["count"]) for r in summaries) > MAX_COUNT:
            share = MAX_COUNT // len(summaries)
            for r in summaries:
                r["count"] = min(int(r["count"]), share)
                _mend_summary(r)
    _mend_summary(step.get("acceptances"))


def _mend_condition(condition):
    if not isinstance(condition, dict):
        return
    more, last = condition.get("more_than"), condition.get("last_runs")
    if _is_int(more) and _is_int(last) and 0 <= more <= 9999 and 1 <= last <= 10000 and more >= last:
        condition["more_than"] = int(last) - 1


def _mend_step_ids(run_id, steps):
    """Gives a step whose id (sent, or `{run_id}:{position}` by default) repeats another's an id
    of its own."""
    seen = set()
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        step_id = step.get("step_id")
        if step_id is None and isinstance(run_id, str):
            position = step.get("position")
            step_id = f"{run_id}:{int(position) if _is_int(position) else i}"
        if not isinstance(step_id, str):
            continue
        if step_id in seen:
            step_id = f"step~{i}~{len(seen)}"
            step["step_id"] = step_id
        seen.add(step_id)


@schemathesis.hook
def map_body(context, body):
    if isinstance(body, dict):
        steps = body.get("steps")
        if isinstance(steps, list):
            _mend_step_ids(body.get("run_id"), steps)
            for step in steps:
                _mend_step(step)
        events = body.get("events")
        if isinstance(events, list):
            for event in events:
                if isinstance(event, dict) and isinstance(event.get("step_finished"), dict):
                    _mend_step(event["step_finished"].get("step"))
        _mend_condition(body.get("condition"))
    return body
