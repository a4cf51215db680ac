// Exports one span with the real Node OTLP/gRPC trace exporter and prints what the exporter reported.
//
// Usage: node export-span.js ENDPOINT COMPRESSION NAME ATTEMPTS
//   ENDPOINT     the gRPC listener, e.g. http://127.0.0.1:4317
//   COMPRESSION  gzip or none
//   NAME         the span's name
//   ATTEMPTS     how many times to export the same finished span at most, stopping at the first success (the
//                exporter's own retries happen inside each attempt)
//
// Prints one line per attempt: SUCCESS, or FAILED and the gRPC status code name of the error (or its message).
'use strict';

const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { status } = require('@grpc/grpc-js');

const [endpoint, compression, name, attemptsArg] = process.argv.slice(2);
const attempts = Number.parseInt(attemptsArg, 10);
if (!endpoint || !['gzip', 'none'].includes(compression) || !name || !(attempts > 0)) {
  console.error('usage: node export-span.js ENDPOINT gzip|none NAME ATTEMPTS');
  process.exit(2);
}

function exportOnce(exporter, spans) {
  return new Promise((resolve) => {
    exporter.export(spans, (result) => {
      if (result.code === 0) {
        resolve('SUCCESS');
      } else {
        const error = result.error ?? {};
        const code = typeof error.code === 'number' ? status[error.code] : undefined;
        resolve(`FAILED ${code ?? String(error.message ?? error)}`);
      }
    });
  });
}

async function main() {
  // The span is recorded in memory first, so every attempt sends the very same span (same trace and span ids).
  const recorded = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'node-conformance' }),
    spanProcessors: [new SimpleSpanProcessor(recorded)],
  });
  provider.getTracer('conformance').startSpan(name).end();
  await provider.forceFlush();
  const spans = recorded.getFinishedSpans();

  const exporter = new OTLPTraceExporter({ url: endpoint, compression, timeoutMillis: 20000 });
  for (let attempt = 0; attempt < attempts; attempt++) {
    const outcome = await exportOnce(exporter, spans);
    console.log(outcome);
    if (outcome === 'SUCCESS') {
      break;
    }
  }
  await exporter.shutdown();
  await provider.shutdown();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
