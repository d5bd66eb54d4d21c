//! A chat model behind an OpenAI-compatible Chat Completions endpoint (vLLM, SGLang, llama.cpp's
//! server, Ollama, `ouroboros serve`), reached through [`crate::http`]'s bounded retries.

use std::time::Duration;

use serde_json::{json, Value};

use super::chat::{ChatError, ChatModel, ChatReply, ChatRequest, ModelInfo};
use crate::http::{CallError, Failure, JsonClient};

/// Where the API key is read from; never from the command line, where `ps` would show it.
pub const API_KEY_ENV: &str = "OUROBOROS_API_KEY";

pub struct RemoteChat {
    url: String,
    model: String,
    http: JsonClient,
}

/// The full Chat Completions URL for what a user may pass: the API base (`http://h:8080/v1`)
/// or the endpoint itself. `None` when it is not an http(s) URL.
pub fn completions_url(given: &str) -> Option<String> {
    crate::http::api_base(given).map(|b| format!("{b}/chat/completions"))
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
        RemoteChat {
            url,
            model,
            http: JsonClient::new(key, timeout, retries),
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

impl RemoteChat {
    fn error(&self, e: CallError) -> ChatError {
        let url = self.url.clone();
        let attempts = e.attempts;
        match e.failure {
            Failure::Unreachable(detail) | Failure::Unsendable(detail) => ChatError::Unreachable {
                url,
                attempts,
                detail,
            },
            Failure::Timeout(t) => ChatError::Timeout {
                url,
                seconds: t.as_secs_f64(),
                attempts,
            },
            Failure::NotJson(detail) => ChatError::BadReply {
                url,
                detail: format!("not JSON: {detail}"),
            },
            Failure::Status(status, message) => {
                let hint = match status {
                    401 | 403 if !self.http.has_key() => {
                        " (the endpoint wants a key: set OUROBOROS_API_KEY)"
                    }
                    401 | 403 => " (check OUROBOROS_API_KEY)",
                    404 => " (--reasoner-url should be the API base, such as http://HOST:PORT/v1, or the /chat/completions URL)",
                    _ => "",
                };
                ChatError::Http {
                    url,
                    status,
                    message,
                    hint,
                }
            }
        }
    }
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
        let reply = self
            .http
            .post(&self.url, &self.body(request))
            .map_err(|e| self.error(e))?;
        self.parse(reply)
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
