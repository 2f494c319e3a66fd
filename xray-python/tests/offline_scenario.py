"""Run by `tests/python_sdk.rs` (not collected by pytest): one half of the offline scenario.

    python offline_scenario.py record PIPELINE   # server down: the run goes to the spool
    python offline_scenario.py deliver           # server up: this later process re-sends it

Both take the endpoint and spool from `XRAY_ENDPOINT` and `XRAY_SPOOL_DIR`.
"""

from __future__ import annotations

import sys
import time

import xray
from xray import XRay


def record(pipeline: str) -> None:
    client = XRay(pipeline, offline_mode="buffer")
    with client.run(input={"offline": True}) as run:
        with run.step("filter", step_type="filter") as step:
            for i in range(10):
                if i % 2:
                    step.reject(i, "odd", {"i": i})
                else:
                    step.accept(i)
        run.set_output({"kept": 5})
    assert client.flush(10.0), "spooled in time"
    stats = xray.stats()
    assert stats["spooled"] == 3 and stats["sent"] == 0, stats
    print(run.id)


def deliver() -> None:
    client = XRay("offline_deliverer", offline_mode="buffer")
    deadline = time.monotonic() + 20
    while xray.stats()["resent"] < 3 and time.monotonic() < deadline:
        client.flush(1.0)
        time.sleep(0.05)
    print(xray.stats())
    assert xray.stats()["resent"] == 3, xray.stats()


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record(sys.argv[2])
    else:
        deliver()
