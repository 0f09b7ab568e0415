//! Optional OpenTelemetry export of the server's tracing spans (cargo feature `otel`).
//!
//! Built with `--features otel` and started with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, every span — `request` with `request.id` and
//! `tenant.id`, the fork's `execute` with `fork.run_id`, … — goes over OTLP/HTTP (protobuf) to
//! the collector, batched off the request path. `OTEL_SERVICE_NAME` names the service
//! (`forklift` by default); the other standard `OTEL_*` variables apply. Without the feature,
//! or without an endpoint, nothing is exported and nothing extra is compiled.

use tracing::Subscriber;
use tracing_subscriber::{Layer, registry::LookupSpan};

/// Flushes the exporter when dropped (at the end of `main`, outside the runtime).
pub struct Guard {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// True when an OTLP endpoint is configured.
pub fn endpoint_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|e| !e.is_empty()))
}

/// The export layer, when built with `otel` and an endpoint is configured. Call it before the
/// async runtime starts: the exporter's HTTP client is a blocking one.
#[cfg(feature = "otel")]
pub fn layer<S>() -> (Option<Box<dyn Layer<S> + Send + Sync>>, Guard)
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    use opentelemetry::trace::TracerProvider as _;

    if !endpoint_configured() {
        return (None, Guard { provider: None });
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("forklift: OpenTelemetry export is off: {err}");
            return (None, Guard { provider: None });
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("forklift");
    }
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("forklift");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
    (
        Some(layer),
        Guard {
            provider: Some(provider),
        },
    )
}

/// Without the `otel` feature: no layer; a configured endpoint gets a warning.
#[cfg(not(feature = "otel"))]
pub fn layer<S>() -> (Option<Box<dyn Layer<S> + Send + Sync>>, Guard)
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    if endpoint_configured() {
        eprintln!(
            "forklift: OTEL_EXPORTER_OTLP_ENDPOINT is set but this build has no OpenTelemetry \
             export (build with `--features otel`)"
        );
    }
    (None, Guard {})
}
