"""X-Ray: record why each step of a pipeline kept, dropped or chose each item.

The recording, sampling, batching, shipping and disk spool are X-Ray's Rust runtime
(``xray._native``); this module adds the decorators and re-exports the rest::

    from xray import XRay

    with XRay("my_pipeline").run(input=data) as run:
        with run.step("filter", step_type="filter") as step:
            for item in candidates:
                if item.price > threshold:
                    step.reject(item.id, "price_too_high", {"price": item.price})
                else:
                    step.accept(item.id)
        run.set_output(result)

Nothing here raises into the pipeline, except a wrong ``step_type`` (``ValueError``) and, in
``offline_mode="fail"``, a delivery failure (``XRayError``).
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, TypeVar, Union, overload

from . import _native
from ._native import (
    Run,
    Step,
    XRay,
    XRayError,
    current_run,
    current_step,
    flush,
    shutdown,
    stats,
)

if TYPE_CHECKING:
    from ._native import CaptureLevel, StepType

__all__ = [
    "STEP_TYPES",
    "Run",
    "Step",
    "XRay",
    "XRayError",
    "current_run",
    "current_step",
    "flush",
    "run",
    "shutdown",
    "stats",
    "step",
]

#: The six step types every step declares one of.
STEP_TYPES = ("generate", "retrieve", "filter", "rank", "select", "transform")

F = TypeVar("F", bound=Callable[..., Any])

_SKIPPED = ("self", "cls")


def _arguments(sig: Optional[inspect.Signature], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    """A call's arguments by name (without ``self``/``cls``): what a decorated function records
    as its input."""
    if sig is None:
        return {"args": list(args), "kwargs": kwargs}
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        return {"args": list(args), "kwargs": kwargs}
    return {k: v for k, v in bound.arguments.items() if k not in _SKIPPED}


def _signature(fn: Callable[..., Any]) -> Optional[inspect.Signature]:
    """``fn``'s signature, or ``None`` for a callable that has none."""
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _count(value: Any) -> Optional[int]:
    """How many items a collection holds (``None`` for anything else)."""
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return len(value)
    return None


def _input_count(
    sig: Optional[inspect.Signature], args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[int]:
    """The size of the first collection among a call's arguments."""
    values = _arguments(sig, args, kwargs)
    if isinstance(values, dict) and "args" not in values:
        candidates = list(values.values())
    else:
        candidates = list(args) + list(kwargs.values())
    for v in candidates:
        n = _count(v)
        if n is not None:
            return n
    return None


class _RunSpec:
    """What ``xray.run(...)`` returns: a decorator for a function, or a context manager that
    opens a run."""

    def __init__(self, pipeline: Optional[str], input: Any, options: Dict[str, Any]) -> None:
        self._pipeline = pipeline
        self._input = input
        self._options = options
        self._client: Optional[XRay] = None
        self._open: List[Run] = []

    def _client_for(self, default: str) -> XRay:
        """The client, made on first use (so ``XRAY_*`` set after import still count)."""
        if self._client is None:
            self._client = XRay(self._pipeline or default)
        return self._client

    def __enter__(self) -> Run:
        opened = self._client_for(_default_pipeline()).run(input=self._input, **self._options)
        self._open.append(opened)
        return opened.__enter__()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return self._open.pop().__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        sig = _signature(fn)
        name = getattr(fn, "__name__", "pipeline")

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                client = self._client_for(name)
                with client.run(input=_arguments(sig, args, kwargs), **self._options) as r:
                    result = await fn(*args, **kwargs)
                    r.set_output(result)
                    return result

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            client = self._client_for(name)
            with client.run(input=_arguments(sig, args, kwargs), **self._options) as r:
                result = fn(*args, **kwargs)
                r.set_output(result)
                return result

        return run_sync  # type: ignore[return-value]


def _default_pipeline() -> str:
    """The pipeline of runs opened without one: ``XRAY_PIPELINE``, else ``default``."""
    import os

    return os.environ.get("XRAY_PIPELINE") or "default"


@overload
def run(pipeline: F) -> F: ...
@overload
def run(
    pipeline: Optional[str] = None,
    *,
    input: Any = None,
    metadata: Any = None,
    correlation_id: Optional[Union[str, int]] = None,
    traceparent: Optional[str] = None,
) -> _RunSpec: ...
def run(
    pipeline: Any = None,
    *,
    input: Any = None,
    metadata: Any = None,
    correlation_id: Optional[Union[str, int]] = None,
    traceparent: Optional[str] = None,
) -> Any:
    """A run of ``pipeline``, as a decorator or a context manager.

    ``@xray.run(pipeline="search")`` on a function (plain or ``async def``) records each call as
    a run: its arguments as the input, its return value as the output, an exception as the
    failure (re-raised unchanged). ``with xray.run(input=data) as run:`` opens a run in the
    default pipeline (``XRAY_PIPELINE``, else ``default``), or in ``pipeline``.
    """
    options: Dict[str, Any] = {
        k: v
        for k, v in (("metadata", metadata), ("correlation_id", correlation_id), ("traceparent", traceparent))
        if v is not None
    }
    if callable(pipeline):
        return _RunSpec(None, None, options)(pipeline)
    return _RunSpec(pipeline, input, options)


class _StepSpec:
    """What ``xray.step(...)`` returns: a decorator for a function, or a context manager that
    opens a step in the current run."""

    def __init__(
        self, name: Optional[str], step_type: Optional[StepType], capture: Optional[CaptureLevel]
    ) -> None:
        _native.check_step_type(step_type)
        self._name = name
        self._step_type = step_type
        self._capture = capture
        self._open: List[Step] = []

    def __enter__(self) -> Step:
        name = self._name or str(self._step_type)
        opened = _native.open_step(name, self._step_type, self._capture)
        self._open.append(opened)
        return opened.__enter__()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return self._open.pop().__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        sig = _signature(fn)
        name = str(self._name or getattr(fn, "__name__", self._step_type))
        step_type, capture = self._step_type, self._capture

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def step_async(*args: Any, **kwargs: Any) -> Any:
                with _native.open_step(name, step_type, capture) as s:
                    s.set_input(_arguments(sig, args, kwargs))
                    result = await fn(*args, **kwargs)
                    s.set_output(result)
                    s._infer_counts(_input_count(sig, args, kwargs), _count(result))
                    return result

            return step_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def step_sync(*args: Any, **kwargs: Any) -> Any:
            with _native.open_step(name, step_type, capture) as s:
                s.set_input(_arguments(sig, args, kwargs))
                result = fn(*args, **kwargs)
                s.set_output(result)
                s._infer_counts(_input_count(sig, args, kwargs), _count(result))
                return result

        return step_sync  # type: ignore[return-value]


def step(
    name: Optional[str] = None,
    *,
    step_type: Optional[StepType] = None,
    capture: Optional[CaptureLevel] = None,
) -> _StepSpec:
    """A step of the current run, as a decorator or a context manager.

    ``@xray.step(step_type="filter")`` on a function (plain or ``async def``) records each call
    as a step named after the function (or ``name``): arguments as input, return value as
    output, the counts from collections among them unless the body set them, an exception as
    the failure (re-raised unchanged). Inside, ``xray.current_step()`` is the step. ``with
    xray.step("filter", step_type="filter") as step:`` opens one directly. Outside any run the
    step is a one-step run of its own. A ``step_type`` other than the six, or none, raises
    ``ValueError``.
    """
    return _StepSpec(name, step_type, capture)
