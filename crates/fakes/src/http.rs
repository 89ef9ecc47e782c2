//! Shared plumbing for the fakes: a loopback hyper server and the request log.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: Method,
    /// The path without the query string.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// All request headers.
    pub headers: HeaderMap,
    /// The raw body bytes.
    pub body: Bytes,
    /// When the request arrived.
    pub at: SystemTime,
}

impl RecordedRequest {
    /// A header value as a string, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A response the handler wants to send, optionally after a delay (to simulate slowness).
#[derive(Debug)]
pub struct Reply {
    /// The response to send.
    pub response: Response<Full<Bytes>>,
    /// How long to wait before sending it.
    pub delay: Option<Duration>,
}

impl Reply {
    /// A JSON response with the given status.
    pub fn json(status: StatusCode, body: &serde_json::Value) -> Self {
        let response = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("static response parts are valid");
        Self {
            response,
            delay: None,
        }
    }

    /// Adds a header to the response.
    pub fn with_header(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        if let Ok(value) = http::HeaderValue::from_str(value.as_ref()) {
            self.response.headers_mut().insert(name, value);
        }
        self
    }

    /// Delays the response.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Closes the connection instead of answering (after the delay, if any): the request was
    /// handled, but the client never learns how.
    pub fn hang_up(mut self) -> Self {
        self.response.extensions_mut().insert(HangUp);
        self
    }
}

/// The mark of a reply that closes the connection instead of answering.
#[derive(Debug, Clone, Copy)]
struct HangUp;

/// The request handler of a fake: a pure function of the recorded request (and the fake's own state).
pub type Handler =
    Arc<dyn Fn(RecordedRequest) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// A running loopback server. Dropping it (or calling [`Server::shutdown`]) stops accepting.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<RecordedRequest>>>,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Binds `127.0.0.1:0` and serves `handler` on a background task, recording every request.
    pub async fn spawn(handler: Handler) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = watch::channel(false);
        let task_log = Arc::clone(&log);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = stopped.changed() => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&task_log);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let handler = Arc::clone(&handler);
                        let log = Arc::clone(&log);
                        async move {
                            let response = serve_one(req, handler, log).await;
                            if response.extensions().get::<HangUp>().is_some() {
                                // An error makes hyper close the connection without answering.
                                return Err(std::io::Error::other("the fake hung up"));
                            }
                            Ok(response)
                        }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, log, stop })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, such as `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A copy of every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.lock().expect("request log lock").clone()
    }

    /// Stops accepting new connections.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn serve_one(
    req: Request<Incoming>,
    handler: Handler,
    log: Arc<Mutex<Vec<RecordedRequest>>>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let recorded = RecordedRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        at: SystemTime::now(),
    };
    log.lock().expect("request log lock").push(recorded.clone());
    let reply = handler(recorded).await;
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    reply.response
}
