//! Logging and traces.
//!
//! Logs: `tracing` to stderr, pretty or JSON, filtered by `log`. Traces: when the standard
//! OpenTelemetry variables ask for it ([`OtlpSettings::from_env`]), the same `tracing` spans are also
//! exported over OTLP/HTTP with protobuf bodies, through `tracing-opentelemetry` and a batch span
//! processor. The processor runs on a thread of its own and sends with a blocking HTTP client, so
//! exporting never runs on (or needs) the actix arbiters' single-threaded runtimes.
//!
//! The spans (names are the constants below): one per HTTP request, matchmake, the WebSocket
//! upgrade, room start and close, persistence flushes, and shutdown. Where a request causes work in
//! an actor (room creation, `DELETE` of a room), the message carries the request's span and the
//! actor opens its span as a child of it.

use std::env::VarError;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{self, FilterExt, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{Config, LogFormat};

/// The span of each HTTP request; it carries `request_id`, so every log line of the request does.
pub const REQUEST_SPAN: &str = "http.request";
/// Service name when neither `OTEL_SERVICE_NAME` nor `service.name` in `OTEL_RESOURCE_ATTRIBUTES` is set.
pub const DEFAULT_SERVICE_NAME: &str = "skirmish";
/// The only OTLP protocol this server speaks.
pub const HTTP_PROTOBUF: &str = "http/protobuf";
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// A collector's answer is at most a small protobuf; anything bigger is not read.
const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// Why the trace exporter could not be set up; the process stops with this message.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "{variable}={value:?} is not supported: this server exports traces over OTLP \"{HTTP_PROTOBUF}\" only"
    )]
    UnsupportedProtocol {
        variable: &'static str,
        value: String,
    },
    #[error("OTEL_TRACES_EXPORTER={0:?} is not supported: use \"otlp\" or \"none\"")]
    UnsupportedExporter(String),
    #[error("{variable}={value:?} is not an http:// or https:// URL")]
    InvalidEndpoint {
        variable: &'static str,
        value: String,
    },
    #[error("{variable}={value:?} is not a number of milliseconds")]
    InvalidTimeout {
        variable: &'static str,
        value: String,
    },
    #[error("{0} is not valid Unicode")]
    NotUnicode(&'static str),
    #[error("building the OTLP trace exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Where and how to export traces, read from the standard OpenTelemetry variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The complete URL spans are POSTed to (`…/v1/traces`).
    pub endpoint: String,
    pub service_name: String,
    pub timeout: Duration,
}

impl OtlpSettings {
    /// `None` (traces off) unless `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// is set; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn them off again.
    pub fn from_env() -> Result<Option<Self>, TelemetryError> {
        Self::from_lookup(|name| match std::env::var(name) {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => Ok(Some(value.trim().to_string())),
            Err(VarError::NotPresent) => Ok(None),
            Err(VarError::NotUnicode(_)) => Err(TelemetryError::NotUnicode(name)),
        })
    }

    /// [`Self::from_env`] over any source of variables (`None` for unset or empty).
    pub fn from_lookup(
        var: impl Fn(&'static str) -> Result<Option<String>, TelemetryError>,
    ) -> Result<Option<Self>, TelemetryError> {
        if var("OTEL_SDK_DISABLED")?.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match var("OTEL_TRACES_EXPORTER")? {
            None => {}
            Some(exporter) if exporter == "otlp" => {}
            Some(exporter) if exporter == "none" => return Ok(None),
            Some(other) => return Err(TelemetryError::UnsupportedExporter(other)),
        }
        // Per the OTLP exporter spec: the signal's own URL is used as given; the general one is a base
        // that `/v1/traces` is appended to.
        let (variable, endpoint) = if let Some(url) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")? {
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)
        } else if let Some(base) = var("OTEL_EXPORTER_OTLP_ENDPOINT")? {
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("{}/v1/traces", base.trim_end_matches('/')),
            )
        } else {
            return Ok(None);
        };
        let scheme_ok = ["http://", "https://"].iter().any(|scheme| {
            endpoint.len() > scheme.len()
                && endpoint
                    .get(..scheme.len())
                    .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        });
        if !scheme_ok || reqwest::Url::parse(&endpoint).is_err() {
            return Err(TelemetryError::InvalidEndpoint {
                variable,
                value: endpoint,
            });
        }
        for variable in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(protocol) = var(variable)? {
                if protocol != HTTP_PROTOBUF {
                    return Err(TelemetryError::UnsupportedProtocol {
                        variable,
                        value: protocol,
                    });
                }
                break; // the signal's own setting wins over the general one
            }
        }
        let mut timeout = DEFAULT_EXPORT_TIMEOUT;
        for variable in [
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ] {
            if let Some(value) = var(variable)? {
                let ms = value
                    .parse::<u64>()
                    .map_err(|_| TelemetryError::InvalidTimeout { variable, value })?;
                timeout = Duration::from_millis(ms);
                break;
            }
        }
        let service_name = match var("OTEL_SERVICE_NAME")? {
            Some(name) => name,
            None => var("OTEL_RESOURCE_ATTRIBUTES")?
                .and_then(|attributes| service_name_attribute(&attributes))
                .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string()),
        };
        Ok(Some(Self {
            endpoint,
            service_name,
            timeout,
        }))
    }
}

/// `service.name` in an `OTEL_RESOURCE_ATTRIBUTES` list (`k1=v1,k2=v2`).
fn service_name_attribute(attributes: &str) -> Option<String> {
    attributes.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == "service.name" && !value.trim().is_empty()).then(|| value.trim().to_string())
    })
}

/// Logging only, no traces, whatever the environment says (tests that run the server in-process).
/// A second call keeps the first subscriber.
pub fn init(config: &Config) {
    let _ = install(config, None);
}

/// Logging, plus traces over OTLP when the OpenTelemetry variables ask for them (the binary).
/// Keep the returned [`Telemetry`] until the end of `main`: dropping it flushes the spans still
/// buffered and stops the exporter.
pub fn init_from_env(config: &Config) -> Result<Telemetry, TelemetryError> {
    let settings = OtlpSettings::from_env()?;
    let provider = settings.as_ref().map(tracer_provider).transpose()?;
    let installed = install(config, provider.as_ref());
    if let Some(settings) = &settings {
        if installed {
            tracing::info!(
                endpoint = %settings.endpoint,
                service_name = %settings.service_name,
                "exporting traces over OTLP/HTTP"
            );
        } else {
            tracing::warn!("a tracing subscriber was already installed: traces are not exported");
        }
    }
    Ok(Telemetry { provider })
}

/// Installs the global subscriber; false if one was already installed.
fn install(config: &Config, traces: Option<&SdkTracerProvider>) -> bool {
    let log_filter = EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| EnvFilter::new(LevelFilter::INFO.to_string()));
    // The request span is on for the log output whatever the level, so that even with `log=warn`
    // a request's warnings carry its request id (a span prints nothing by itself).
    let request_span = filter::filter_fn(|meta| meta.is_span() && meta.name() == REQUEST_SPAN)
        .with_max_level_hint(LevelFilter::INFO);
    let log_filter = log_filter.or(request_span);
    let logs = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let traces = traces.map(|provider| {
        // Spans and events at INFO and above, except the exporter's own diagnostics, which must
        // not feed back into what it exports.
        let exported = Targets::new()
            .with_default(LevelFilter::INFO)
            .with_target("opentelemetry", LevelFilter::OFF)
            .with_target("reqwest", LevelFilter::OFF)
            .with_target("hyper", LevelFilter::OFF);
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("skirmish"))
            .with_filter(exported)
    });
    Registry::default()
        .with(logs.with_filter(log_filter))
        .with(traces)
        .try_init()
        .is_ok()
}

/// Builds the exporter (OTLP, HTTP, protobuf) and the provider with its batch span processor.
fn tracer_provider(settings: &OtlpSettings) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(settings.timeout)
        .with_http_client(BlockingHttpClient::new(settings.timeout))
        .build()?;
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    // The batch processor exports from a thread of its own (not from an arbiter), every
    // OTEL_BSP_SCHEDULE_DELAY ms (default 5000) or when OTEL_BSP_MAX_EXPORT_BATCH_SIZE spans wait.
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The running trace pipeline; dropping it flushes and stops the exporter.
#[must_use = "dropping Telemetry stops exporting traces"]
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether traces are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports every span still buffered (waiting at most the export timeout) and stops the exporter.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "traces could not all be exported at exit");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The exporter's HTTP client: a blocking `reqwest` client, built on first use on the batch
/// processor's own thread (a blocking client must not be created or used on an async runtime).
#[derive(Debug)]
struct BlockingHttpClient {
    timeout: Duration,
    client: OnceLock<reqwest::blocking::Client>,
}

impl BlockingHttpClient {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&reqwest::blocking::Client, HttpError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(self.timeout)
            .build()?;
        Ok(self.client.get_or_init(|| client))
    }
}

#[async_trait::async_trait]
impl HttpClient for BlockingHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        use std::io::Read;
        let (parts, body) = request.into_parts();
        let response = self
            .client()?
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.to_vec())
            .send()?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        response.take(MAX_RESPONSE_BYTES).read_to_end(&mut bytes)?;
        let mut answer = Response::builder()
            .status(status)
            .body(Bytes::from(bytes))?;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&'static str, &str)]) -> Result<Option<OtlpSettings>, TelemetryError> {
        let vars: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        OtlpSettings::from_lookup(|name| Ok(vars.get(name).cloned()))
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_set() {
        assert_eq!(settings(&[]).unwrap(), None);
        assert_eq!(
            settings(&[
                ("OTEL_SERVICE_NAME", "x"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            ])
            .unwrap(),
            None,
            "without an endpoint nothing else is looked at"
        );
    }

    #[test]
    fn the_general_endpoint_is_a_base_and_the_traces_endpoint_is_used_as_given() {
        let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(s.service_name, DEFAULT_SERVICE_NAME);
        assert_eq!(s.timeout, DEFAULT_EXPORT_TIMEOUT);
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://otel.example/custom",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.endpoint, "https://otel.example/custom");
    }

    #[test]
    fn service_name_comes_from_the_variable_then_the_resource_attributes() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        let named = |vars: &[(&'static str, &str)]| settings(vars).unwrap().unwrap().service_name;
        assert_eq!(
            named(&[base, ("OTEL_SERVICE_NAME", "arena-eu")]),
            "arena-eu"
        );
        assert_eq!(
            named(&[
                base,
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=prod, service.name=from-attrs"
                )
            ]),
            "from-attrs"
        );
        assert_eq!(
            named(&[
                base,
                ("OTEL_SERVICE_NAME", "wins"),
                ("OTEL_RESOURCE_ATTRIBUTES", "service.name=loses")
            ]),
            "wins"
        );
    }

    #[test]
    fn only_http_protobuf_is_accepted_and_the_error_names_the_variable() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert!(settings(&[base, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).is_ok());
        for (variable, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ] {
            let error = settings(&[base, (variable, value)]).unwrap_err();
            assert!(
                matches!(&error, TelemetryError::UnsupportedProtocol { variable: v, value: got } if *v == variable && got == value),
                "{error}"
            );
            assert!(error.to_string().contains(variable), "{error}");
        }
        // The signal's own protocol wins over the general one.
        assert!(
            settings(&[
                base,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
            ])
            .is_ok()
        );
    }

    #[test]
    fn bad_endpoints_and_timeouts_are_errors_and_off_switches_win() {
        for url in ["collector:4318", "ftp://c/", "http://", "http://bad host/"] {
            let error = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", url)]).unwrap_err();
            assert!(
                matches!(error, TelemetryError::InvalidEndpoint { .. }),
                "{url}: {error}"
            );
        }
        let error = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ])
        .unwrap_err();
        assert!(
            matches!(error, TelemetryError::InvalidTimeout { .. }),
            "{error}"
        );
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.timeout, Duration::from_millis(2500));
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            assert_eq!(
                settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off]).unwrap(),
                None
            );
        }
        assert!(matches!(
            settings(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "zipkin")
            ]),
            Err(TelemetryError::UnsupportedExporter(_))
        ));
    }
}
