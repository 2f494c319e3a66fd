"""Type stubs of `xray._native`, the Rust extension (re-exported by `xray`)."""

from typing import Any, Dict, Literal, Optional, Union

from typing_extensions import Self

StepType = Literal["generate", "retrieve", "filter", "rank", "select", "transform"]
CaptureLevel = Literal["minimal", "sample", "full"]
OfflineMode = Literal["buffer", "silent", "fail"]
ItemId = Union[str, int]

class XRayError(Exception):
    """Delivery to the X-Ray server failed (raised only in `offline_mode="fail"`)."""

class XRay:
    """Records runs of one pipeline, shipping them to the X-Ray server in the background."""

    def __init__(
        self,
        pipeline: str,
        endpoint: Optional[str] = None,
        offline_mode: Optional[OfflineMode] = None,
        capture: Optional[CaptureLevel] = None,
        *,
        api_key: Optional[str] = None,
        spool_dir: Optional[str] = None,
        batch_size: Optional[int] = None,
        batch_interval_ms: Optional[int] = None,
        http_timeout_ms: Optional[int] = None,
        max_attempts: Optional[int] = None,
        max_details_bytes: Optional[int] = None,
        max_io_bytes: Optional[int] = None,
        version: Optional[str] = None,
    ) -> None:
        """A client for `pipeline`; settings left `None` come from `XRAY_*`, else the defaults
        (`http://127.0.0.1:8000`, `"buffer"`, `"sample"`). `version`: the pipeline code's
        version, recorded on every run (`XRAY_VERSION`)."""
    @property
    def pipeline(self) -> str:
        """The pipeline's name."""
    def run(
        self,
        input: Any = None,
        metadata: Any = None,
        correlation_id: Optional[ItemId] = None,
        traceparent: Optional[str] = None,
    ) -> Run:
        """Starts a run; use it as a context manager."""
    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until everything recorded is delivered or spooled; `True` if it was in time."""
    def stats(self) -> Dict[str, int]:
        """What became of this client's events: sent, spooled, resent, dropped, failed."""

class Run:
    """One run of a pipeline: `completed` when its block ends, `failed` on an exception."""

    @property
    def id(self) -> Optional[str]:
        """The run's id (`None` for a run that records nothing)."""
    @property
    def pipeline(self) -> Optional[str]:
        """The run's pipeline."""
    @property
    def is_recording(self) -> bool:
        """Whether this run records anything."""
    def step(self, name: str, step_type: StepType, capture: Optional[CaptureLevel] = None) -> Step:
        """Opens a step; a `step_type` other than the six (or none) raises `ValueError`."""
    def set_output(self, value: Any) -> None:
        """The run's output (any JSON-able value; otherwise its `repr`)."""
    def set_error(self, message: object) -> None:
        """Marks the run failed with this message."""
    def finish(self) -> None:
        """Ends the run now (in `fail` mode, raises `XRayError` if delivery failed)."""
    def fail(self, message: object) -> None:
        """Ends the run now as failed with this message."""
    def __enter__(self) -> Self:
        """Makes this run `xray.current_run()`."""
    def __exit__(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> bool:
        """Ends the run; an exception leaving the block fails it and goes on unchanged."""

class Step:
    """One step of a run: what it rejected, accepted and decided, and why."""

    @property
    def id(self) -> Optional[str]:
        """The step's id (`None` for a step that records nothing)."""
    @property
    def is_recording(self) -> bool:
        """Whether this step records anything."""
    def reject(self, item_id: ItemId, reason: str, details: Any = None) -> None:
        """Records that `item_id` was rejected for `reason` (exact count; sampled details)."""
    def accept(self, item_id: ItemId, details: Any = None) -> None:
        """Records that `item_id` was let through."""
    def decide(self, item_id: ItemId, score: float, details: Any = None) -> None:
        """Records what the step chose, its score and why (the last decision stands)."""
    def set_runner_up(self, item_id: ItemId, score: float) -> None:
        """The decision's runner-up and its score (the step's close-call margin)."""
    def rank(self, item_id: ItemId, position: int, score: float, details: Any = None) -> None:
        """Records where `item_id` landed in a rank step (position from 1) and its score."""
    def set_cutoff(self, k: int) -> None:
        """How many of a rank step's items go on: positions 1..=k."""
    def set_input_count(self, n: int) -> None:
        """How many items came in."""
    def set_output_count(self, n: int) -> None:
        """How many items went out."""
    def set_attribute(self, key: str, value: Any) -> None:
        """A free-form attribute (`model`, `threshold`…)."""
    def set_input(self, value: Any) -> None:
        """The step's input."""
    def set_output(self, value: Any) -> None:
        """The step's output."""
    def set_error(self, message: object) -> None:
        """Marks the step failed with this message."""
    def _infer_counts(self, input: Optional[int] = None, output: Optional[int] = None) -> None:
        """Counts for the decorators, set only where the body set none."""
    def finish(self) -> None:
        """Ends the step now."""
    def fail(self, message: object) -> None:
        """Ends the step now as failed with this message."""
    def __enter__(self) -> Self:
        """Makes this step `xray.current_step()`."""
    def __exit__(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> bool:
        """Ends the step; an exception leaving the block fails it and goes on unchanged."""

def current_run() -> Run:
    """The run the calling code is in (one that records nothing outside any run)."""

def current_step() -> Step:
    """The step the calling code is in (one that records nothing outside any step)."""

def open_step(
    name: str, step_type: Optional[StepType] = None, capture: Optional[CaptureLevel] = None
) -> Step:
    """Opens a step in the current run (outside any run: a one-step run of its own)."""

def check_step_type(step_type: Optional[str] = None) -> None:
    """Raises `ValueError` naming the six unless `step_type` is one."""

def flush(timeout: float = 5.0) -> bool:
    """Waits until every client's events are delivered or spooled; `True` if in time."""

def shutdown(timeout: float = 5.0) -> bool:
    """Delivers or spools what every client holds and stops their background threads."""

def stats() -> Dict[str, int]:
    """What became of every client's events: sent, spooled, resent, dropped, failed."""
