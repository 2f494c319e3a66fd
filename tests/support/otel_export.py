"""Exports the comparison pipeline through OpenTelemetry's own Python SDK and OTLP/HTTP exporter.

argv: the server's /v1/traces URL, then `all` (every event kept: the span event limit raised) or
`exact` (the SDK's default limit of 128 events a span, the true counts sent as span attributes).
Prints the trace id (32 hex digits).
"""
import json
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

url, mode = sys.argv[1], sys.argv[2]
limits = SpanLimits(max_events=1000) if mode == "all" else SpanLimits()
provider = TracerProvider(resource=Resource.create({"service.name": "shop"}), span_limits=limits)
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
tracer = provider.get_tracer("otel-comparison")

with tracer.start_as_current_span("competitor_selection") as run:
    run.set_attribute("xray.pipeline", "otel_competitor")
    run.set_attribute("xray.input", json.dumps({"product_title": "iPhone 15 Case"}))
    with tracer.start_as_current_span("generate_keywords") as s:
        s.set_attribute("xray.step_type", "generate")
    with tracer.start_as_current_span("search_products") as s:
        s.set_attribute("xray.step_type", "retrieve")
        s.set_attribute("xray.input_count", 1000)
        s.set_attribute("xray.output_count", 300)
    with tracer.start_as_current_span("filter_candidates") as s:
        s.set_attribute("xray.step_type", "filter")
        s.set_attribute("xray.input_count", 300)
        s.set_attribute("xray.output_count", 10)
        counts = {}
        for i in range(300):
            if i % 30 == 0:
                s.add_event("xray.accept", {"xray.item_id": f"p{i}", "price": i})
            else:
                reason = f"r{i % 8}"
                counts[reason] = counts.get(reason, 0) + 1
                s.add_event("xray.reject", {"xray.item_id": f"p{i}", "xray.reason": reason, "price": i})
        if mode == "exact":
            for reason, n in counts.items():
                s.set_attribute(f"xray.rejected.{reason}", n)
            s.set_attribute("xray.accepted", 10)
    with tracer.start_as_current_span("rank_by_relevance") as s:
        s.set_attribute("xray.step_type", "rank")
        s.set_attribute("xray.input_count", 10)
        s.set_attribute("xray.output_count", 10)
    with tracer.start_as_current_span("select_best") as s:
        s.set_attribute("xray.step_type", "select")
        s.add_event("xray.decide", {"xray.item_id": "p0", "xray.score": 0.93, "why": "best"})
    run.set_attribute("xray.output", json.dumps({"selected": "p0"}))
    trace_id = run.get_span_context().trace_id

provider.shutdown()
print(format(trace_id, "032x"))
