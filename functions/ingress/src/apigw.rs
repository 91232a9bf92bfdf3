//! Lambda HTTP events in, Lambda HTTP responses out: API Gateway HTTP APIs (payload 2.0, also
//! used by Lambda function URLs), REST APIs (payload 1.0) and ALB.
//!
//! The conversion is done here rather than by `lambda_http::run` so that the ingress owns the
//! base64 decoding of the body (lambda_http panics on invalid base64; here it is a `400`), routes
//! on the path without the stage, and sees every query parameter as sent.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use lambda_http::aws_lambda_events::alb::{AlbTargetGroupRequest, AlbTargetGroupResponse};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use lambda_http::aws_lambda_events::encodings::Body;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use serde::{Deserialize, Serialize};

/// An HTTP request as Lambda receives it. Variants are tried in this order, as lambda_http does.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum HttpEvent {
    RestApi(Box<ApiGatewayProxyRequest>),
    HttpApi(Box<ApiGatewayV2httpRequest>),
    Alb(Box<AlbTargetGroupRequest>),
}

/// The response in the shape the event's source expects.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum HttpResponse {
    RestApi(ApiGatewayProxyResponse),
    HttpApi(ApiGatewayV2httpResponse),
    Alb(AlbTargetGroupResponse),
}

/// Where an event came from, to answer in its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    RestApi,
    HttpApi,
    Alb,
}

/// The body was flagged base64 but is not.
#[derive(Debug, thiserror::Error)]
#[error("the request body is flagged base64-encoded but does not decode")]
pub struct InvalidBase64;

/// Turns a Lambda HTTP event into a request of the raw body bytes.
pub fn into_request(event: HttpEvent) -> (Origin, Result<Request<Bytes>, InvalidBase64>) {
    match event {
        HttpEvent::HttpApi(event) => {
            let event = *event;
            let raw_path = event.raw_path.as_deref().unwrap_or("/");
            let path = without_stage(raw_path, event.request_context.stage.as_deref());
            let request = build(
                event.request_context.http.method,
                path,
                event.raw_query_string.unwrap_or_default(),
                event.headers,
                event.body,
                event.is_base64_encoded,
            );
            (Origin::HttpApi, request)
        }
        HttpEvent::RestApi(event) => {
            let event = *event;
            // `path` is the resource path without the stage.
            let request = from_maps(
                event.http_method,
                event.path.as_deref(),
                (
                    &event.multi_value_query_string_parameters,
                    &event.query_string_parameters,
                ),
                (event.multi_value_headers, event.headers),
                event.body,
                event.is_base64_encoded,
            );
            (Origin::RestApi, request)
        }
        HttpEvent::Alb(event) => {
            let event = *event;
            let request = from_maps(
                event.http_method,
                event.path.as_deref(),
                (
                    &event.multi_value_query_string_parameters,
                    &event.query_string_parameters,
                ),
                (event.multi_value_headers, event.headers),
                event.body,
                event.is_base64_encoded,
            );
            (Origin::Alb, request)
        }
    }
}

/// REST API (1.0) and ALB events carry the query as maps (multi-valued and single) and the
/// headers twice (multi-valued and single).
fn from_maps(
    method: Method,
    path: Option<&str>,
    (multi_query, single_query): (&QueryMap, &QueryMap),
    (mut headers, single_headers): (HeaderMap, HeaderMap),
    body: Option<String>,
    is_base64_encoded: bool,
) -> Result<Request<Bytes>, InvalidBase64> {
    headers.extend(single_headers);
    build(
        method,
        path.unwrap_or("/"),
        encode_query(multi_query, single_query),
        headers,
        body,
        is_base64_encoded,
    )
}

/// Turns a response into the shape `origin` expects.
pub fn into_response(origin: Origin, response: Response<String>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let status = i64::from(parts.status.as_u16());
    let body = Some(Body::Text(body));
    match origin {
        Origin::HttpApi => {
            let mut out = ApiGatewayV2httpResponse::default();
            out.status_code = status;
            out.headers = parts.headers;
            out.body = body;
            HttpResponse::HttpApi(out)
        }
        Origin::RestApi => {
            let mut out = ApiGatewayProxyResponse::default();
            out.status_code = status;
            out.headers = parts.headers;
            out.body = body;
            HttpResponse::RestApi(out)
        }
        Origin::Alb => {
            let mut out = AlbTargetGroupResponse::default();
            out.status_code = status;
            out.status_description = Some(format!(
                "{} {}",
                parts.status.as_u16(),
                parts.status.canonical_reason().unwrap_or("")
            ));
            out.headers = parts.headers;
            out.body = body;
            HttpResponse::Alb(out)
        }
    }
}

/// HTTP APIs put a named stage in front of the path (`/prod/line`); the `$default` stage does not.
fn without_stage<'p>(path: &'p str, stage: Option<&str>) -> &'p str {
    match stage {
        Some(stage) if stage != "$default" && !stage.is_empty() => path
            .strip_prefix('/')
            .and_then(|rest| rest.strip_prefix(stage))
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(path),
        _ => path,
    }
}

fn build(
    method: Method,
    path: &str,
    query: String,
    headers: HeaderMap,
    body: Option<String>,
    is_base64_encoded: bool,
) -> Result<Request<Bytes>, InvalidBase64> {
    let body = match body {
        None => Bytes::new(),
        Some(text) if is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(|_| InvalidBase64)?,
        Some(text) => Bytes::from(text),
    };
    // A path or query that does not form a URI is routed as an unknown path (404), never a panic.
    let uri = if query.is_empty() {
        path.parse::<http::Uri>()
    } else {
        format!("{path}?{query}").parse::<http::Uri>()
    }
    .unwrap_or_else(|_| http::Uri::from_static("/invalid-uri"));
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Re-encodes REST API and ALB query parameters (which arrive decoded, as maps) as a query string.
fn encode_query(multi: &QueryMap, single: &QueryMap) -> String {
    let source = if multi.is_empty() { single } else { multi };
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in source.iter() {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(event: serde_json::Value) -> (Origin, Request<Bytes>) {
        let event: HttpEvent = serde_json::from_value(event).expect("event");
        let (origin, request) = into_request(event);
        (origin, request.expect("request"))
    }

    #[test]
    fn http_api_events_keep_the_raw_query_and_decode_base64() {
        let (origin, request) = request(json!({
            "version": "2.0", "rawPath": "/meta", "rawQueryString": "hub.mode=subscribe&hub.challenge=1&hub.challenge=2",
            "headers": {"X-Hub-Signature-256": "sha256=00"},
            "requestContext": {"http": {"method": "POST", "path": "/meta"}, "stage": "$default"},
            "body": "eyJhIjoi5LiAIn0=", "isBase64Encoded": true
        }));
        assert_eq!(origin, Origin::HttpApi);
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri().path(), "/meta");
        assert_eq!(
            request.uri().query(),
            Some("hub.mode=subscribe&hub.challenge=1&hub.challenge=2")
        );
        assert_eq!(request.headers()["x-hub-signature-256"], "sha256=00");
        assert_eq!(request.body().as_ref(), "{\"a\":\"一\"}".as_bytes());
    }

    #[test]
    fn http_api_named_stages_are_stripped() {
        let (_, request) = request(json!({
            "version": "2.0", "rawPath": "/prod/line", "rawQueryString": "",
            "requestContext": {"http": {"method": "POST", "path": "/prod/line"}, "stage": "prod"},
            "isBase64Encoded": false
        }));
        assert_eq!(request.uri().path(), "/line");
        assert_eq!(
            without_stage("/production/line", Some("prod")),
            "/production/line"
        );
        assert_eq!(without_stage("/line", Some("$default")), "/line");
    }

    #[test]
    fn rest_api_events_rebuild_the_query_from_its_maps() {
        let (origin, request) = request(json!({
            "resource": "/meta", "path": "/meta", "httpMethod": "GET",
            "headers": {"Host": "x"}, "multiValueHeaders": {"Host": ["x"]},
            "queryStringParameters": {"hub.mode": "subscribe"},
            "multiValueQueryStringParameters": {"hub.mode": ["subscribe"], "hub.challenge": ["a b"]},
            "requestContext": {"stage": "prod", "path": "/prod/meta", "httpMethod": "GET"},
            "body": null, "isBase64Encoded": false
        }));
        assert_eq!(origin, Origin::RestApi);
        assert_eq!(request.uri().path(), "/meta", "`path` has no stage");
        let query: Vec<(String, String)> =
            form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        assert!(query.contains(&("hub.mode".into(), "subscribe".into())));
        assert!(query.contains(&("hub.challenge".into(), "a b".into())));
    }

    #[test]
    fn alb_events_are_understood_and_answered_in_their_shape() {
        let (origin, request) = request(json!({
            "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/1"}},
            "httpMethod": "POST", "path": "/line", "queryStringParameters": {},
            "headers": {"x-line-signature": "abc"}, "body": "{}", "isBase64Encoded": false
        }));
        assert_eq!(request.uri().path(), "/line");
        assert_eq!(origin, Origin::Alb);
        let response = into_response(origin, Response::new("OK".to_owned()));
        let json = serde_json::to_value(response).expect("json");
        assert_eq!(json["statusCode"], 200);
        assert_eq!(json["body"], "OK");
        assert_eq!(json["statusDescription"], "200 OK");
    }

    #[test]
    fn invalid_base64_is_an_error_not_a_panic() {
        let event: HttpEvent = serde_json::from_value(json!({
            "version": "2.0", "rawPath": "/line", "rawQueryString": "",
            "requestContext": {"http": {"method": "POST", "path": "/line"}},
            "body": "not base64 at all!", "isBase64Encoded": true
        }))
        .expect("event");
        let (origin, request) = into_request(event);
        assert_eq!(origin, Origin::HttpApi);
        assert!(request.is_err());
    }

    #[test]
    fn responses_carry_status_headers_and_body() {
        let mut response = Response::new("challenge".to_owned());
        *response.status_mut() = http::StatusCode::FORBIDDEN;
        response
            .headers_mut()
            .insert("content-type", http::HeaderValue::from_static("text/plain"));
        let json = serde_json::to_value(into_response(Origin::HttpApi, response)).expect("json");
        assert_eq!(json["statusCode"], 403);
        assert_eq!(json["headers"]["content-type"], "text/plain");
        assert_eq!(json["body"], "challenge");
        assert_eq!(json["isBase64Encoded"], false);
    }
}
