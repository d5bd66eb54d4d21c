//! `ouroboros serve`: a chat model (GGUF or Hugging Face) behind the OpenAI Chat Completions
//! API, so one GPU machine can be the reasoner for a team's other machines (`--reasoner remote`), with nothing
//! leaving the local network.
//!
//! Requests are answered one at a time by one model. Structured output (`response_format`) is
//! enforced for the reasoner's plan schema (see `PlanForm::from_schema`) and otherwise accepted
//! and not enforced; the reasoner validates answers either way. Streaming is refused.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tiny_http::{Header, Method, Response, Server};

use super::exit;
use crate::device::DeviceSpec;
use crate::reasoner::chat::{ChatError, ChatModel, ChatRequest, Message};
use crate::reasoner::constrain::PlanForm;
use crate::reasoner::local::LocalChat;

/// When set, clients must send `Authorization: Bearer <value>`.
pub const SERVE_KEY_ENV: &str = "OUROBOROS_SERVE_API_KEY";
/// Request bodies above this are refused (a plan prompt is a few kB).
const MAX_BODY: u64 = 4 << 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A chat model: a GGUF file or a Hugging Face checkpoint directory (llama or qwen2).
    #[arg(long, value_name = "FILE|DIR")]
    pub model: PathBuf,
    /// The name clients ask for (default: the model's general.name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Address to listen on. Anything but loopback lets other machines in.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port; 0 picks a free one (printed at start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

struct ApiError {
    status: u16,
    kind: &'static str,
    message: String,
}

fn api_error(status: u16, kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        kind,
        message: message.into(),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.model.exists() {
        bail!("--model {}: no such file", args.model.display());
    }
    let device: DeviceSpec = args.device.parse()?;
    let device = device.open()?;
    let mut chat = LocalChat::load(&args.model, &device)
        .with_context(|| format!("--model {}", args.model.display()))?;
    let name = args.name.clone().unwrap_or_else(|| chat.name().to_string());
    let key = std::env::var(SERVE_KEY_ENV).ok().filter(|k| !k.is_empty());
    let server = Server::http((args.host.as_str(), args.port))
        .map_err(|e| anyhow::anyhow!("--host {} --port {}: {e}", args.host, args.port))?;
    let addr = server
        .server_addr()
        .to_ip()
        .context("the server has no IP address")?;
    println!("listening on http://{addr}/v1 (model {name})");
    std::io::stdout().flush()?;
    let mut served = 0u64;
    for mut request in server.incoming_requests() {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let authorized = key.as_ref().is_none_or(|k| {
            request.headers().iter().any(|h| {
                h.field.equiv("Authorization") && h.value.as_str() == format!("Bearer {k}")
            })
        });
        let result: Result<Value, ApiError> = if !authorized {
            Err(api_error(
                401,
                "authentication_error",
                "missing or wrong API key (Authorization: Bearer ...)",
            ))
        } else {
            match (&method, path.trim_end_matches('/')) {
                (Method::Get, "/health") => Ok(json!({"status": "ok"})),
                (Method::Get, "/v1/models") => Ok(json!({
                    "object": "list",
                    "data": [{"id": name, "object": "model", "owned_by": "ouroboros"}],
                })),
                (Method::Post, "/v1/chat/completions") => {
                    let mut body = Vec::new();
                    match request
                        .as_reader()
                        .take(MAX_BODY + 1)
                        .read_to_end(&mut body)
                    {
                        Err(e) => Err(api_error(400, "invalid_request_error", e.to_string())),
                        Ok(_) if body.len() as u64 > MAX_BODY => Err(api_error(
                            413,
                            "invalid_request_error",
                            format!("the body is over {MAX_BODY} bytes"),
                        )),
                        Ok(_) => {
                            served += 1;
                            complete(&mut chat, &name, &body, served)
                        }
                    }
                }
                (_, "/health" | "/v1/models" | "/v1/chat/completions") => Err(api_error(
                    405,
                    "invalid_request_error",
                    format!("{method} is not allowed on {path}"),
                )),
                _ => Err(api_error(
                    404,
                    "invalid_request_error",
                    format!("no route {path} (this server has /v1/chat/completions, /v1/models, /health)"),
                )),
            }
        };
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
        let response = Response::from_string(body.to_string())
            .with_status_code(status)
            .with_header(
                Header::from_bytes("Content-Type", "application/json").expect("static header"),
            );
        // A client that hung up is no reason to stop serving the others.
        let _ = request.respond(response);
    }
    Ok(ExitCode::from(exit::OK))
}

/// The text of an OpenAI message's content: a string, or a list of `{"type": "text"}` parts.
fn content_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| {
                (p.get("type").and_then(Value::as_str) == Some("text"))
                    .then(|| p.get("text").and_then(Value::as_str).map(str::to_string))
                    .flatten()
            })
            .collect::<Option<Vec<_>>>()
            .map(|t| t.join("")),
        _ => None,
    }
}

fn complete(chat: &mut LocalChat, name: &str, body: &[u8], n: u64) -> Result<Value, ApiError> {
    let bad = |m: String| api_error(400, "invalid_request_error", m);
    let req: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let asked = req
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("\"model\" is required".into()))?;
    if asked != name {
        return Err(api_error(
            404,
            "model_not_found",
            format!("model {asked:?} is not served here; this server serves {name:?}"),
        ));
    }
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(bad("\"stream\": true is not supported".into()));
    }
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("\"messages\" must be a non-empty list".into()))?
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m.get("role").and_then(Value::as_str);
            let content = m.get("content").and_then(content_text);
            match (role, content) {
                (Some(role), Some(content)) => Ok(Message {
                    role: role.to_string(),
                    content,
                }),
                _ => Err(bad(format!(
                    "messages[{i}] needs a \"role\" and a text \"content\""
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let number = |k: &str| req.get(k).and_then(Value::as_f64);
    let max_tokens = number("max_completion_tokens")
        .or_else(|| number("max_tokens"))
        .unwrap_or(256.0);
    if !(max_tokens >= 1.0 && max_tokens.fract() == 0.0) {
        return Err(bad(format!(
            "max_tokens {max_tokens}: must be a positive integer"
        )));
    }
    let temperature = number("temperature").unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(bad(format!("temperature {temperature}: must be in 0..2")));
    }
    let request = ChatRequest {
        messages,
        max_tokens: max_tokens as usize,
        temperature,
        seed: req.get("seed").and_then(Value::as_u64).unwrap_or(0),
        json_schema: None,
        constraint: req
            .pointer("/response_format/json_schema/schema")
            .and_then(PlanForm::from_schema),
    };
    let reply = chat.complete(&request).map_err(|e| match e {
        ChatError::TooLong { .. } => bad(e.to_string()),
        other => api_error(500, "server_error", other.to_string()),
    })?;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(json!({
        "id": format!("chatcmpl-{n}"),
        "object": "chat.completion",
        "created": created,
        "model": name,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.text},
            "finish_reason": reply.finish_reason,
        }],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }))
}
