//! `ouroboros serve`: one model behind an OpenAI-compatible HTTP API, so one GPU machine can
//! serve a team's workstations over the local network.
//!
//! hyper speaks HTTP/1.1 on a small tokio runtime and bounds what a client can send: the
//! request head (size, header count, and a deadline to finish sending it), the body (size, and
//! a deadline too, so a slow client cannot hold anything), and a conflicting `Content-Length`
//! is refused. The model lives on one worker thread; requests wait for it in a bounded queue,
//! and a full queue is answered 429 at once. Answers are JSON, and so are errors, in OpenAI's
//! shape (`{"error": {"message", "type", "code"}}`); an internal error's details go to the
//! server's log, never into a response.

mod chat;
mod diffusion;
mod fields;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub use chat::ChatBackend;
pub use diffusion::{DiffusionBackend, CHECKPOINT_FILES};

/// The most requests the worker takes from the queue at once (a diffusion backend denoises
/// them in one batch).
const BATCH: usize = 16;

/// What a client may send, and how long it may take.
#[derive(Debug, Clone)]
pub struct Limits {
    pub body_bytes: usize,
    /// The request line and headers together (hyper's read buffer; at least 8 KiB).
    pub head_bytes: usize,
    pub headers: usize,
    /// From connecting to the end of the request head.
    pub head_timeout: Duration,
    /// To send the whole body.
    pub body_timeout: Duration,
    /// Requests waiting for the model beyond the one it is working on.
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 4 << 20,
            head_bytes: 16 << 10,
            headers: 64,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            queue: 32,
        }
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError {
        status: 400,
        kind: "invalid_request_error",
        message: message.into(),
    }
}

/// An internal failure: logged with its details, answered without them.
pub fn internal(what: &str, e: &dyn std::error::Error) -> ApiError {
    let mut detail = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        detail.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    eprintln!(
        "internal error {what}: {}",
        crate::provenance::redact(&detail)
    );
    ApiError {
        status: 500,
        kind: "server_error",
        message: format!("internal error {what} (the details are in the server's log)"),
    }
}

/// Where a diffusion server describes its checkpoint.
pub const CHECKPOINT: &str = "/v1/ouroboros/checkpoint";

/// The POST routes a model may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ChatCompletions,
    Completions,
    Denoise,
    Loss,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Route::ChatCompletions => "/v1/chat/completions",
            Route::Completions => "/v1/completions",
            Route::Denoise => "/v1/ouroboros/denoise",
            Route::Loss => "/v1/ouroboros/loss",
        }
    }
}

/// A served model. It runs on the worker thread, one request at a time.
pub trait Backend: Send + 'static {
    /// The name clients ask for.
    fn name(&self) -> &str;
    /// The routes it answers.
    fn routes(&self) -> &'static [Route];
    /// Extra fields for its `/v1/models` entry.
    fn describe(&self) -> Value {
        json!({})
    }
    /// What `GET /v1/ouroboros/checkpoint` answers: the checkpoint's settings and tokenizer,
    /// for clients that build canvases themselves. `None`: the route does not exist.
    fn checkpoint(&self) -> Option<Value> {
        None
    }
    fn handle(&mut self, route: Route, request: &Value) -> Result<Value, ApiError>;
    /// Several requests that waited together; by default one after the other.
    fn handle_many(&mut self, jobs: &[(Route, &Value)]) -> Vec<Result<Value, ApiError>> {
        jobs.iter().map(|(r, v)| self.handle(*r, v)).collect()
    }
}

struct Job {
    route: Route,
    request: Value,
    reply: oneshot::Sender<Result<Value, ApiError>>,
}

struct Shared {
    name: String,
    routes: &'static [Route],
    describe: Value,
    checkpoint: Option<Value>,
    key: Option<String>,
    limits: Limits,
    jobs: std::sync::mpsc::SyncSender<Job>,
}

/// Serve `backend` on `addr` until the process ends; `ready` is called with the bound address.
pub fn serve(
    backend: Box<dyn Backend>,
    addr: SocketAddr,
    key: Option<String>,
    limits: Limits,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(limits.queue);
    let shared = Arc::new(Shared {
        name: backend.name().to_string(),
        routes: backend.routes(),
        describe: backend.describe(),
        checkpoint: backend.checkpoint(),
        key,
        limits,
        jobs,
    });
    let mut backend = backend;
    std::thread::Builder::new()
        .name("model".into())
        .spawn(move || {
            while let Ok(first) = queue.recv() {
                // Whatever else is already waiting goes into the same batch.
                let mut jobs = vec![first];
                while jobs.len() < BATCH {
                    match queue.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let requests: Vec<(Route, &Value)> =
                    jobs.iter().map(|j| (j.route, &j.request)).collect();
                if requests.len() > 1 {
                    eprintln!("batch of {} requests", requests.len());
                }
                let answers = backend.handle_many(&requests);
                for (job, answer) in jobs.into_iter().zip(answers) {
                    // The client may have gone; the others are waiting.
                    let _ = job.reply.send(answer);
                }
            }
        })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        ready(listener.local_addr()?);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let limits = shared.limits.clone();
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(answer(&shared, req).await) }
                });
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(limits.head_timeout)
                    .max_buf_size(limits.head_bytes.max(8192))
                    .max_headers(limits.headers);
                // A client that hangs up or sends garbage ends only its own connection.
                let _ = http.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}

async fn answer(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let result = route(shared, req).await;
    let (status, body) = match result {
        Ok(v) => (200, v),
        Err(e) => (
            e.status,
            json!({"error": {"message": e.message, "type": e.kind, "code": e.status}}),
        ),
    };
    eprintln!(
        "{method} {path} {status} {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a status, one header and a body make a response")
}

async fn route(shared: &Shared, req: Request<Incoming>) -> Result<Value, ApiError> {
    if let Some(key) = &shared.key {
        let expected = format!("Bearer {key}");
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return Err(ApiError {
                status: 401,
                kind: "authentication_error",
                message: "missing or wrong API key (Authorization: Bearer ...)".into(),
            });
        }
    }
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    let post = [
        Route::ChatCompletions,
        Route::Completions,
        Route::Denoise,
        Route::Loss,
    ]
    .into_iter()
    .find(|r| r.path() == path && shared.routes.contains(r));
    match (&method, path.as_str(), post) {
        (&Method::GET, "/health", _) => Ok(json!({"status": "ok"})),
        (&Method::GET, "/v1/models", _) => {
            let mut entry = json!({"id": shared.name, "object": "model", "owned_by": "ouroboros"});
            if let (Some(e), Some(extra)) = (entry.as_object_mut(), shared.describe.as_object()) {
                e.extend(extra.clone());
            }
            Ok(json!({"object": "list", "data": [entry]}))
        }
        (&Method::GET, CHECKPOINT, _) if shared.checkpoint.is_some() => {
            Ok(shared.checkpoint.clone().unwrap_or_default())
        }
        (&Method::POST, _, Some(route)) => {
            let request = body_json(shared, req).await?;
            check_model(shared, &request)?;
            run(shared, route, request).await
        }
        (_, p, found) if found.is_some() || p == "/health" || p == "/v1/models" => Err(ApiError {
            status: 405,
            kind: "invalid_request_error",
            message: format!("{method} is not allowed on {path}"),
        }),
        _ => {
            let mut routes: Vec<&str> = shared.routes.iter().map(|r| r.path()).collect();
            if shared.checkpoint.is_some() {
                routes.push(CHECKPOINT);
            }
            Err(ApiError {
                status: 404,
                kind: "invalid_request_error",
                message: format!(
                    "no route {path} (this server has {}, /v1/models, /health)",
                    routes.join(", ")
                ),
            })
        }
    }
}

/// The body as JSON, within the size and time limits.
async fn body_json(shared: &Shared, req: Request<Incoming>) -> Result<Value, ApiError> {
    let limit = shared.limits.body_bytes;
    let collected = tokio::time::timeout(
        shared.limits.body_timeout,
        Limited::new(req.into_body(), limit).collect(),
    )
    .await
    .map_err(|_| ApiError {
        status: 408,
        kind: "invalid_request_error",
        message: format!(
            "the body took over {} s to arrive",
            shared.limits.body_timeout.as_secs()
        ),
    })?;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(ApiError {
                status: 413,
                kind: "invalid_request_error",
                message: format!("the body is over {limit} bytes"),
            })
        }
        Err(e) => return Err(bad_request(format!("reading the body: {e}"))),
    };
    serde_json::from_slice(&bytes).map_err(|e| bad_request(format!("not JSON: {e}")))
}

fn check_model(shared: &Shared, request: &Value) -> Result<(), ApiError> {
    let asked = request
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("\"model\" is required"))?;
    if asked != shared.name {
        return Err(ApiError {
            status: 404,
            kind: "model_not_found",
            message: format!(
                "model {asked:?} is not served here; this server serves {:?}",
                shared.name
            ),
        });
    }
    Ok(())
}

/// Queue the request for the model, or answer 429 when the queue is full.
async fn run(shared: &Shared, route: Route, request: Value) -> Result<Value, ApiError> {
    let (reply, answer) = oneshot::channel();
    shared
        .jobs
        .try_send(Job {
            route,
            request,
            reply,
        })
        .map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(_) => ApiError {
                status: 429,
                kind: "rate_limit_error",
                message: format!(
                    "the model is busy and {} request(s) are already waiting; try again shortly",
                    shared.limits.queue
                ),
            },
            std::sync::mpsc::TrySendError::Disconnected(_) => ApiError {
                status: 503,
                kind: "server_error",
                message: "the model worker has stopped".into(),
            },
        })?;
    answer.await.unwrap_or_else(|_| {
        Err(ApiError {
            status: 503,
            kind: "server_error",
            message: "the model worker has stopped".into(),
        })
    })
}
