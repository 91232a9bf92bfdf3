//! A loopback HTTP proxy in front of moto that injects faults into AWS calls: delays, throttling
//! answers, and `SendMessageBatch` answers that report some entries failed (after moto stored
//! them, as a real partial failure may have).

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What the proxy does to each call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Forward every call after this delay.
    Delay(Duration),
    /// Answer every `n`th call (1 = every call) with a throttling error instead of forwarding it.
    Throttle { every: usize },
    /// Forward every call; in `SendMessageBatch` answers, report the first successful entry of
    /// every `n`th call as failed (not the sender's fault).
    FailFirstEntry { every: usize },
}

/// A running proxy.
pub struct FaultProxy {
    pub url: String,
    /// Calls seen.
    pub calls: Arc<AtomicUsize>,
    /// Calls given a fault.
    pub faults: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    pub async fn start(upstream: &str, fault: Fault) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let calls = Arc::new(AtomicUsize::new(0));
        let faults = Arc::new(AtomicUsize::new(0));
        let state = (
            upstream.trim_end_matches('/').to_owned(),
            fault,
            Arc::clone(&calls),
            Arc::clone(&faults),
            reqwest::Client::new(),
        );
        let app = axum::Router::new().fallback(move |request: Request| {
            let state = state.clone();
            async move { forward(state, request).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy {
            url,
            calls,
            faults,
            task,
        }
    }

    pub fn faults(&self) -> usize {
        self.faults.load(Ordering::SeqCst)
    }
}

type State = (
    String,
    Fault,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    reqwest::Client,
);

async fn forward((upstream, fault, calls, faults, client): State, request: Request) -> Response {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    match fault {
        Fault::Delay(delay) => tokio::time::sleep(delay).await,
        Fault::Throttle { every } if n % every.max(1) == 0 => {
            faults.fetch_add(1, Ordering::SeqCst);
            return Response::builder()
                .status(400)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amzn-query-error", "ThrottlingException;Sender")
                .body(Body::from(
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded (injected)"}"#,
                ))
                .unwrap_or_default();
        }
        _ => {}
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut outgoing = client.request(parts.method.clone(), format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(answer) = outgoing.body(body).send().await else {
        return Response::builder()
            .status(502)
            .body(Body::empty())
            .unwrap_or_default();
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let mut bytes = answer.bytes().await.unwrap_or_default().to_vec();
    if let Fault::FailFirstEntry { every } = fault
        && target.ends_with("SendMessageBatch")
        && n % every.max(1) == 0
        && let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && let Some(moved) = json["Successful"]
            .as_array_mut()
            .filter(|s| !s.is_empty())
            .map(|s| s.remove(0))
    {
        faults.fetch_add(1, Ordering::SeqCst);
        let failed = serde_json::json!({"Id": moved["Id"], "SenderFault": false, "Code": "InternalError", "Message": "injected"});
        match json["Failed"].as_array_mut() {
            Some(list) => list.push(failed),
            None => json["Failed"] = serde_json::json!([failed]),
        }
        bytes = serde_json::to_vec(&json).unwrap_or(bytes);
    }
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(bytes)).unwrap_or_default()
}
