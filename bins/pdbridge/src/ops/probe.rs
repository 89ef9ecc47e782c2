//! One-shot HTTP requests for `pdbridge check`, for the few facts the API clients do not expose:
//! PagerDuty's `GET /users/me` (which only a user-level token can read), `GET /services/{id}`,
//! `GET /teams/{id}`, and Slack's `x-oauth-scopes` response header on `auth.test`.
//!
//! No retries, no rate limiting: `check` sends a handful of requests, once. Tokens go only into
//! the `Authorization` header, marked sensitive, and never into errors.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The deadline of one probe, from sending to reading the whole body.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: status, headers and the body as JSON (`Value::Null` when it is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body parsed as JSON.
    pub json: Value,
}

/// A small HTTPS (or loopback HTTP) client.
#[derive(Debug, Clone)]
pub struct Probe {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Probe {
    /// Builds the client (rustls with the ring provider and the bundled webpki roots).
    pub fn new() -> Result<Self, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("TLS setup: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Sends one request. `auth` is the whole `Authorization` value; errors never contain it.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        auth: &str,
        accept: &str,
        body: Option<&str>,
    ) -> Result<Answer, String> {
        let mut auth = HeaderValue::from_str(auth)
            .map_err(|_| "the token is not a valid header value".to_owned())?;
        auth.set_sensitive(true);
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, accept);
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json; charset=utf-8");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
            .map_err(|_| format!("`{url}` is not a valid request URL"))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("request to {url} failed: {e}"))?;
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|e| format!("reading the answer of {url} failed: {e}"))?
                .to_bytes();
            Ok(Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            })
        };
        tokio::time::timeout(PROBE_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer from {url} within {}s", PROBE_TIMEOUT.as_secs()))?
    }
}
