//! A chat model behind an OpenAI-compatible Chat Completions endpoint (vLLM, SGLang, llama.cpp's
//! server, Ollama, `ouroboros serve`). Blocking HTTP with a timeout per attempt and a bounded
//! number of retries for the failures that can pass (connection refused while a server starts,
//! timeouts, 429 and 5xx); other HTTP errors fail at once with the server's message.

use std::time::Duration;

use serde_json::{json, Value};

use super::chat::{ChatError, ChatModel, ChatReply, ChatRequest, ModelInfo};

/// Where the API key is read from; never from the command line, where `ps` would show it.
pub const API_KEY_ENV: &str = "OUROBOROS_API_KEY";

pub struct RemoteChat {
    url: String,
    model: String,
    key: Option<String>,
    timeout: Duration,
    retries: usize,
    agent: ureq::Agent,
}

/// The full Chat Completions URL for what a user may pass: the API base (`http://h:8080/v1`)
/// or the endpoint itself. `None` when it is not an http(s) URL.
pub fn completions_url(given: &str) -> Option<String> {
    let trimmed = given.trim().trim_end_matches('/');
    let (scheme, rest) = trimmed.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.starts_with('/') {
        return None;
    }
    Some(if trimmed.ends_with("/chat/completions") {
        trimmed.to_string()
    } else {
        format!("{trimmed}/chat/completions")
    })
}

impl RemoteChat {
    /// `url` must already be a Chat Completions URL (see [`completions_url`]).
    pub fn new(
        url: String,
        model: String,
        key: Option<String>,
        timeout: Duration,
        retries: usize,
    ) -> RemoteChat {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .build();
        RemoteChat {
            url,
            model,
            key,
            timeout,
            retries,
            agent,
        }
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
            "stream": false,
        });
        if let Some(schema) = &request.json_schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": "plan", "schema": schema, "strict": true},
            });
        }
        body
    }

    fn parse(&self, reply: Value) -> Result<ChatReply, ChatError> {
        let bad = |detail: &str| ChatError::BadReply {
            url: self.url.clone(),
            detail: detail.to_string(),
        };
        let choice = reply
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| bad("no choices[0]"))?;
        let text = choice
            .pointer("/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("choices[0].message.content is not a string"))?;
        let usage = |k: &str| {
            reply
                .pointer(&format!("/usage/{k}"))
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize
        };
        Ok(ChatReply {
            text: text.to_string(),
            prompt_tokens: usage("prompt_tokens"),
            completion_tokens: usage("completion_tokens"),
            finish_reason: choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .unwrap_or("stop")
                .to_string(),
        })
    }
}

enum Failure {
    /// Worth another attempt.
    Transient(ChatError),
    Final(ChatError),
}

impl RemoteChat {
    fn attempt(&self, body: &Value, attempts: usize) -> Result<ChatReply, Failure> {
        let mut call = self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/json");
        if let Some(key) = &self.key {
            call = call.set("Authorization", &format!("Bearer {key}"));
        }
        match call.send_json(body) {
            Ok(response) => {
                let value: Value = response.into_json().map_err(|e| {
                    if is_timeout(&e) {
                        Failure::Transient(self.timed_out(attempts))
                    } else {
                        Failure::Final(ChatError::BadReply {
                            url: self.url.clone(),
                            detail: format!("not JSON: {e}"),
                        })
                    }
                })?;
                self.parse(value).map_err(Failure::Final)
            }
            Err(ureq::Error::Status(status, response)) => {
                let text = response.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/error/message")
                            .or_else(|| v.get("error"))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| text.chars().take(300).collect());
                let hint = match status {
                    401 | 403 if self.key.is_none() => {
                        " (the endpoint wants a key: set OUROBOROS_API_KEY)"
                    }
                    401 | 403 => " (check OUROBOROS_API_KEY)",
                    404 => " (--reasoner-url should be the API base, such as http://HOST:PORT/v1, or the /chat/completions URL)",
                    _ => "",
                };
                let e = ChatError::Http {
                    url: self.url.clone(),
                    status,
                    message,
                    hint,
                };
                if status == 429 || (500..600).contains(&status) {
                    Err(Failure::Transient(e))
                } else {
                    Err(Failure::Final(e))
                }
            }
            Err(ureq::Error::Transport(t)) => {
                if t.kind() == ureq::ErrorKind::Io && transport_timed_out(&t) {
                    Err(Failure::Transient(self.timed_out(attempts)))
                } else if matches!(
                    t.kind(),
                    ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns | ureq::ErrorKind::Io
                ) {
                    Err(Failure::Transient(ChatError::Unreachable {
                        url: self.url.clone(),
                        attempts,
                        detail: t.to_string(),
                    }))
                } else {
                    Err(Failure::Final(ChatError::Unreachable {
                        url: self.url.clone(),
                        attempts,
                        detail: t.to_string(),
                    }))
                }
            }
        }
    }

    fn timed_out(&self, attempts: usize) -> ChatError {
        ChatError::Timeout {
            url: self.url.clone(),
            seconds: self.timeout.as_secs_f64(),
            attempts,
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

fn transport_timed_out(t: &ureq::Transport) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return is_timeout(io);
        }
        source = s.source();
    }
    false
}

impl ChatModel for RemoteChat {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            kind: "remote",
            model: self.model.clone(),
            endpoint: Some(self.url.clone()),
            weights_sha256: None,
            device: None,
        }
    }

    fn complete(&mut self, request: &ChatRequest) -> Result<ChatReply, ChatError> {
        let body = self.body(request);
        let mut attempt = 1;
        loop {
            match self.attempt(&body, attempt) {
                Ok(reply) => return Ok(reply),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(e)) if attempt > self.retries => return Err(e),
                Err(Failure::Transient(_)) => {
                    // Exponential back-off: 0.5 s, 1 s, 2 s, ... capped at 8 s.
                    let wait = 0.5 * 2f64.powi(attempt as i32 - 1);
                    std::thread::sleep(Duration::from_secs_f64(wait.min(8.0)));
                    attempt += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reasoner::chat::Message;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn the_api_base_or_the_endpoint_is_accepted() {
        assert_eq!(
            completions_url("http://127.0.0.1:8080/v1/").as_deref(),
            Some("http://127.0.0.1:8080/v1/chat/completions")
        );
        assert_eq!(
            completions_url("https://h/v1/chat/completions").as_deref(),
            Some("https://h/v1/chat/completions")
        );
        assert_eq!(completions_url("127.0.0.1:8080"), None);
        assert_eq!(completions_url("ftp://h/v1"), None);
        assert_eq!(completions_url("http://"), None);
    }

    fn request() -> ChatRequest {
        ChatRequest {
            messages: vec![Message::user("hi")],
            max_tokens: 4,
            temperature: 0.0,
            seed: 0,
            json_schema: Some(json!({"type": "object"})),
            constraint: None,
        }
    }

    #[test]
    fn a_closed_port_fails_after_the_bounded_retries() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = completions_url(&format!("http://127.0.0.1:{port}/v1")).unwrap();
        let mut chat = RemoteChat::new(url, "m".into(), None, Duration::from_secs(2), 1);
        let e = chat.complete(&request()).unwrap_err();
        assert!(
            matches!(e, ChatError::Unreachable { attempts: 2, .. }),
            "{e}"
        );
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and reads, never writes: the client's timeout is what ends the call.
        let hold = std::thread::spawn(move || {
            let mut held = Vec::new();
            for _ in 0..2 {
                if let Ok((mut s, _)) = listener.accept() {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    held.push(s);
                }
            }
            std::thread::sleep(Duration::from_secs(3));
        });
        let url = completions_url(&format!("http://127.0.0.1:{port}/v1")).unwrap();
        let mut chat = RemoteChat::new(url, "m".into(), None, Duration::from_millis(600), 1);
        let e = chat.complete(&request()).unwrap_err();
        assert!(matches!(e, ChatError::Timeout { attempts: 2, .. }), "{e}");
        hold.join().unwrap();
    }

    #[test]
    fn the_request_carries_the_schema_as_structured_output() {
        let chat = RemoteChat::new(
            "http://h/v1/chat/completions".into(),
            "qwen".into(),
            None,
            Duration::from_secs(1),
            0,
        );
        let body = chat.body(&request());
        assert_eq!(body["model"], "qwen");
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(
            body["response_format"]["json_schema"]["schema"],
            json!({"type": "object"})
        );
        assert_eq!(body["messages"][0]["role"], "user");
    }
}
