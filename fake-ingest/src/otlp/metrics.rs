//! Metric data points to events: one event per data point, named by the metric, keyed by a hash of the resource,
//! the scope, the metric name, the point's attributes, start time and time. What the points of one metric share
//! (type, unit, description, temporality) is held once per metric.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint, metric, number_data_point};
use prost::Message as _;
use serde_json::{Map, Value, json};

use super::Decoded;
use super::values::{
    finite_or_string, insert_nonempty, insert_some, insert_unix_nanos, rfc3339_from_unix_nanos,
};
use super::walk::{Origin, ResourceGroup, ScopeGroup, walk};
use crate::event::{IncomingEvent, SharedProperties};

/// The longest metric name accepted: the OpenTelemetry specification limits instrument names to 255 characters.
/// (Each data point's event carries the name, so an unbounded one would multiply into every point.)
pub(super) const MAX_METRIC_NAME_CHARS: usize = 255;

/// One data point of any kind, reduced to what the event and the key need.
struct PointView<'a> {
    attributes: &'a [KeyValue],
    start_time_unix_nano: u64,
    time_unix_nano: u64,
    /// The kind-specific properties (`otel.value`, `otel.count`, ...).
    values: Map<String, Value>,
}

pub(super) fn decode(
    request: ExportMetricsServiceRequest,
    shared: Option<Arc<SharedProperties>>,
) -> Decoded {
    let groups = request
        .resource_metrics
        .into_iter()
        .map(|resource_metrics| ResourceGroup {
            resource: resource_metrics.resource,
            scopes: resource_metrics
                .scope_metrics
                .into_iter()
                .map(|scope_metrics| ScopeGroup {
                    scope: scope_metrics.scope,
                    records: scope_metrics.metrics,
                })
                .collect(),
        });
    walk(groups, shared, |origin, index, metric, decoded| {
        let name_chars = metric.name.chars().count();
        let at = || {
            if name_chars > MAX_METRIC_NAME_CHARS {
                format!(
                    "{} (a metric named by {name_chars} characters)",
                    origin.at(index)
                )
            } else {
                format!("{} (metric {:?})", origin.at(index), metric.name)
            }
        };
        let Some(data) = &metric.data else {
            decoded
                .rejected
                .reject(|| format!("metric at {} has no data", at()));
            return;
        };
        let (kind, points) = metric_points(data);
        if name_chars > MAX_METRIC_NAME_CHARS {
            for _ in 0..points.len().max(1) {
                decoded.rejected.reject(|| {
                    format!(
                        "metric at {}: the name is longer than {MAX_METRIC_NAME_CHARS} characters",
                        at()
                    )
                });
            }
            return;
        }
        let shared = Arc::new(metric_properties(origin, &metric, kind, data));
        for point in points {
            match point {
                Ok(point) if point.time_unix_nano == 0 => {
                    decoded.rejected.reject(|| {
                        format!(
                            "a data point of the metric at {} has no time_unix_nano",
                            at()
                        )
                    });
                }
                Ok(point) => decoded
                    .events
                    .push(point_event(origin, &metric, &shared, point)),
                Err(reason) => decoded
                    .rejected
                    .reject(|| format!("a data point of the metric at {}: {reason}", at())),
            }
        }
    })
}

/// What every point of a metric shares, under the scope's properties.
fn metric_properties(
    origin: &Origin,
    metric: &Metric,
    kind: &str,
    data: &metric::Data,
) -> SharedProperties {
    let mut properties = Map::new();
    properties.insert("otel.metric_type".to_owned(), json!(kind));
    insert_nonempty(&mut properties, "otel.unit", &metric.unit);
    insert_nonempty(&mut properties, "otel.description", &metric.description);
    let temporality = match data {
        metric::Data::Sum(sum) => Some(sum.aggregation_temporality),
        metric::Data::Histogram(histogram) => Some(histogram.aggregation_temporality),
        metric::Data::ExponentialHistogram(histogram) => Some(histogram.aggregation_temporality),
        metric::Data::Gauge(_) | metric::Data::Summary(_) => None,
    };
    if let Some(temporality) = temporality {
        properties.insert(
            "otel.aggregation_temporality".to_owned(),
            json!(temporality),
        );
    }
    if let metric::Data::Sum(sum) = data {
        properties.insert("otel.is_monotonic".to_owned(), json!(sum.is_monotonic));
    }
    SharedProperties {
        properties,
        parent: Some(Arc::clone(&origin.scope)),
    }
}

/// The kind name and the data points of a metric (an `Err` for a point that is invalid in itself).
fn metric_points(data: &metric::Data) -> (&'static str, Vec<Result<PointView<'_>, &'static str>>) {
    match data {
        metric::Data::Gauge(gauge) => (
            "gauge",
            gauge.data_points.iter().map(number_point).collect(),
        ),
        metric::Data::Sum(sum) => ("sum", sum.data_points.iter().map(number_point).collect()),
        metric::Data::Histogram(histogram) => (
            "histogram",
            histogram
                .data_points
                .iter()
                .map(|point| {
                    let mut values = Map::new();
                    values.insert("otel.count".to_owned(), json!(point.count));
                    insert_some(&mut values, "otel.sum", point.sum);
                    insert_some(&mut values, "otel.min", point.min);
                    insert_some(&mut values, "otel.max", point.max);
                    values.insert("otel.bucket_counts".to_owned(), json!(point.bucket_counts));
                    values.insert(
                        "otel.explicit_bounds".to_owned(),
                        json!(point.explicit_bounds),
                    );
                    Ok(PointView {
                        attributes: &point.attributes,
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        values,
                    })
                })
                .collect(),
        ),
        metric::Data::ExponentialHistogram(histogram) => (
            "exponential_histogram",
            histogram
                .data_points
                .iter()
                .map(|point| {
                    let mut values = Map::new();
                    values.insert("otel.count".to_owned(), json!(point.count));
                    insert_some(&mut values, "otel.sum", point.sum);
                    insert_some(&mut values, "otel.min", point.min);
                    insert_some(&mut values, "otel.max", point.max);
                    values.insert("otel.scale".to_owned(), json!(point.scale));
                    values.insert("otel.zero_count".to_owned(), json!(point.zero_count));
                    Ok(PointView {
                        attributes: &point.attributes,
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        values,
                    })
                })
                .collect(),
        ),
        metric::Data::Summary(summary) => (
            "summary",
            summary
                .data_points
                .iter()
                .map(|point| {
                    let mut values = Map::new();
                    values.insert("otel.count".to_owned(), json!(point.count));
                    values.insert("otel.sum".to_owned(), finite_or_string(point.sum));
                    let quantiles: Vec<Value> = point
                        .quantile_values
                        .iter()
                        .map(|quantile| {
                            json!([
                                finite_or_string(quantile.quantile),
                                finite_or_string(quantile.value)
                            ])
                        })
                        .collect();
                    values.insert("otel.quantiles".to_owned(), Value::Array(quantiles));
                    Ok(PointView {
                        attributes: &point.attributes,
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        values,
                    })
                })
                .collect(),
        ),
    }
}

fn number_point(point: &NumberDataPoint) -> Result<PointView<'_>, &'static str> {
    let value = match point.value {
        Some(number_data_point::Value::AsDouble(double)) => finite_or_string(double),
        Some(number_data_point::Value::AsInt(int)) => json!(int),
        None => return Err("it has no value (neither asDouble nor asInt)"),
    };
    let mut values = Map::new();
    values.insert("otel.value".to_owned(), value);
    Ok(PointView {
        attributes: &point.attributes,
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        values,
    })
}

fn point_event(
    origin: &Origin,
    metric: &Metric,
    shared: &Arc<SharedProperties>,
    point: PointView<'_>,
) -> IncomingEvent {
    let mut key = origin.key;
    key.part(metric.name.as_bytes());
    for attribute in point.attributes {
        key.part(&attribute.encode_to_vec());
    }
    key.part(&point.start_time_unix_nano.to_le_bytes());
    key.part(&point.time_unix_nano.to_le_bytes());

    let mut properties = super::values::attributes_map(point.attributes);
    insert_unix_nanos(
        &mut properties,
        "otel.start_time_unix_nano",
        point.start_time_unix_nano,
    );
    insert_unix_nanos(&mut properties, "otel.time_unix_nano", point.time_unix_nano);
    properties.extend(point.values);

    IncomingEvent {
        dedupe_key: format!("metric:{}", key.finish_hex()),
        has_idempotency_key: true,
        name: metric.name.clone(),
        timestamp: rfc3339_from_unix_nanos(point.time_unix_nano),
        distinct_id: None,
        resource: Some(Arc::clone(&origin.resource)),
        shared: Some(Arc::clone(shared)),
        properties,
    }
}
