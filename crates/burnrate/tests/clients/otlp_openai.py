"""The official OpenAI client, instrumented by opentelemetry-instrumentation-openai-v2 and
exporting over OTLP/HTTP protobuf, as an application would run it: one chat call per customer
named in argv, the customer set through baggage that BaggageSpanProcessor copies onto spans.

Everything comes from the environment the test sets: OPENAI_BASE_URL, OPENAI_API_KEY,
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_HEADERS, and content capture on
(OTEL_SEMCONV_STABILITY_OPT_IN, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)."""

import sys

import openai
from opentelemetry import baggage, context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

prompt = sys.argv[1]
customers = sys.argv[2:]

provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
OpenAIInstrumentor().instrument()

client = openai.OpenAI()
for customer in customers:
    token = context.attach(baggage.set_baggage("burnrate.customer", customer))
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
    finally:
        context.detach(token)

# Exports what is batched and waits for the answers.
provider.shutdown()
print("exported", len(customers))
