//! Logging: one JSON object per line, as CloudWatch Logs Insights reads it.

/// Installs a JSON log subscriber, filtered by `RUST_LOG` (default `info`). Safe to call twice.
pub fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .try_init();
}

/// The CloudWatch namespace of the gateway's metrics.
pub const METRICS_NAMESPACE: &str = "ChatGateway";

/// A metric value in Embedded Metric Format.
#[derive(Debug, Clone, Copy)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub value: f64,
    /// `Count` or `Milliseconds`.
    pub unit: &'a str,
}

impl<'a> Metric<'a> {
    pub fn count(name: &'a str, value: usize) -> Metric<'a> {
        Metric {
            name,
            value: value as f64,
            unit: "Count",
        }
    }

    pub fn milliseconds(name: &'a str, value: f64) -> Metric<'a> {
        Metric {
            name,
            value,
            unit: "Milliseconds",
        }
    }
}

/// Metrics are written when running in Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set) unless
/// `GATEWAY_METRICS=off`, or anywhere with `GATEWAY_METRICS=emf`.
pub fn metrics_enabled() -> bool {
    match std::env::var("GATEWAY_METRICS").as_deref() {
        Ok("off") => false,
        Ok("emf") => true,
        _ => std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some(),
    }
}

/// The dimension that names a registry tenant ([`crate::tenants`]).
pub const TENANT_DIMENSION: &str = "Tenant";

/// One Embedded Metric Format record: CloudWatch turns it into metrics in [`METRICS_NAMESPACE`]
/// with the given dimensions (`Service` first). Metrics of value zero are left out. With a
/// `Tenant` dimension the record publishes two dimension sets, with and without it, so that the
/// service's own metrics (and the alarms on them) still count every tenant's events.
pub fn emf_record(dimensions: &[(&str, &str)], metrics: &[Metric<'_>]) -> Option<String> {
    let metrics: Vec<&Metric<'_>> = metrics.iter().filter(|m| m.value != 0.0).collect();
    if metrics.is_empty() {
        return None;
    }
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let mut record = serde_json::Map::new();
    record.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": dimension_sets(dimensions),
                "Metrics": metrics.iter().map(|m| serde_json::json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, value) in dimensions {
        record.insert((*name).into(), serde_json::Value::from(*value));
    }
    for metric in metrics {
        record.insert(metric.name.into(), serde_json::Value::from(metric.value));
    }
    Some(serde_json::Value::Object(record).to_string())
}

fn dimension_sets(dimensions: &[(&str, &str)]) -> Vec<Vec<String>> {
    let all: Vec<String> = dimensions
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    if !all.iter().any(|name| name == TENANT_DIMENSION) {
        return vec![all];
    }
    let without: Vec<String> = all
        .iter()
        .filter(|name| *name != TENANT_DIMENSION)
        .cloned()
        .collect();
    vec![without, all]
}

/// Writes an [`emf_record`] to standard output, where Lambda hands it to CloudWatch.
pub fn emit_metrics(dimensions: &[(&str, &str)], metrics: &[Metric<'_>]) {
    if let Some(record) = emf_record(dimensions, metrics) {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{record}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_is_counted_for_the_service_and_for_itself() {
        let record = emf_record(
            &[("Service", "ingress"), ("Tenant", "brand-a")],
            &[Metric::count("EventsAccepted", 2)],
        )
        .expect("record");
        let value: serde_json::Value = serde_json::from_str(&record).expect("json");
        assert_eq!(
            value["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Service"], ["Service", "Tenant"]])
        );
        assert_eq!(value["Tenant"], "brand-a");
    }

    #[test]
    fn emf_records_name_their_metrics_and_dimensions() {
        let record = emf_record(
            &[("Service", "ingress"), ("Reason", "signature_mismatch")],
            &[
                Metric::count("RequestsRejected", 1),
                Metric::count("EventsAccepted", 0),
            ],
        )
        .expect("record");
        let value: serde_json::Value = serde_json::from_str(&record).expect("json");
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "ChatGateway");
        assert_eq!(
            directive["Dimensions"][0],
            serde_json::json!(["Service", "Reason"])
        );
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{"Name": "RequestsRejected", "Unit": "Count"}])
        );
        assert_eq!(value["Service"], "ingress");
        assert_eq!(value["Reason"], "signature_mismatch");
        assert_eq!(value["RequestsRejected"], 1.0);
        assert!(value.get("EventsAccepted").is_none());
        assert!(emf_record(&[("Service", "x")], &[Metric::count("Zero", 0)]).is_none());
    }
}
