"""Shared by the Python SDK's tests: the X-Ray server they record to and read back from.

They run from the workspace suite (`tests/python_sdk.rs` starts a real xray-server, installs
this package into a venv and runs pytest with `XRAY_TEST_SERVER` and `XRAY_ENDPOINT` set).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

import xray


class Api:
    """Reads the server's HTTP API."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def get(self, path: str) -> Any:
        """The JSON answer to `GET path` (fails the test on a non-200)."""
        with urllib.request.urlopen(self.base + path, timeout=10) as res:
            return json.load(res)

    def run(self, run_id: str) -> Any:
        """One run with its steps, after delivering everything recorded so far."""
        assert xray.flush(10.0), "everything delivered in time"
        return self.get("/runs/" + urllib.parse.quote(run_id, safe=""))

    def runs(self, pipeline: str) -> list:
        """Every run of `pipeline`, newest first, after delivering what was recorded."""
        assert xray.flush(10.0), "everything delivered in time"
        return self.get("/runs?limit=1000&pipeline=" + urllib.parse.quote(pipeline))["runs"]


@pytest.fixture(scope="session")
def api() -> Api:
    base = os.environ.get("XRAY_TEST_SERVER")
    if not base:
        pytest.fail("XRAY_TEST_SERVER is not set: run these through `cargo test --test python_sdk`")
    return Api(base)


@pytest.fixture
def pipeline() -> str:
    """A pipeline name of the test's own."""
    return "py_" + uuid.uuid4().hex[:12]


def step_named(run: Any, name: str) -> Any:
    """The step of `run` called `name`."""
    found = [s for s in run["steps"] if s["name"] == name]
    assert len(found) == 1, f"one step {name!r} in {[s['name'] for s in run['steps']]}"
    return found[0]
