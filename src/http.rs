//! JSON over HTTP to an OpenAI-compatible server, shared by the remote reasoner and the remote
//! generator: blocking calls with a timeout per attempt and a bounded number of retries for the
//! failures that can pass (connection refused while a server starts, timeouts, 429 and 5xx).
//! Other HTTP errors fail at once with the server's own message. The key goes in a bearer
//! header and nowhere else.

use std::time::Duration;

use serde_json::Value;

/// Why a call failed, after `attempts` tries.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub failure: Failure,
    pub attempts: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Unreachable(String),
    /// The request could not be sent at all (a malformed URL, say); not retried.
    Unsendable(String),
    Timeout(Duration),
    /// The server answered with an error status and this message.
    Status(u16, String),
    NotJson(String),
}

impl Failure {
    fn transient(&self) -> bool {
        match self {
            Failure::Unreachable(_) | Failure::Timeout(_) => true,
            Failure::Status(s, _) => *s == 429 || (500..600).contains(s),
            Failure::NotJson(_) | Failure::Unsendable(_) => false,
        }
    }
}

pub struct JsonClient {
    agent: ureq::Agent,
    key: Option<String>,
    timeout: Duration,
    retries: usize,
}

impl JsonClient {
    pub fn new(key: Option<String>, timeout: Duration, retries: usize) -> JsonClient {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .build();
        JsonClient {
            agent,
            key,
            timeout,
            retries,
        }
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// POST `body` to `url`, retrying what may pass with exponential back-off (0.5 s, 1 s,
    /// 2 s, ... capped at 8 s).
    pub fn post(&self, url: &str, body: &Value) -> Result<Value, CallError> {
        self.with_retries(|| self.once(self.agent.post(url), Some(body)))
    }

    pub fn get(&self, url: &str) -> Result<Value, CallError> {
        self.with_retries(|| self.once(self.agent.get(url), None))
    }

    fn with_retries(&self, call: impl Fn() -> Result<Value, Failure>) -> Result<Value, CallError> {
        let mut attempts = 1;
        loop {
            match call() {
                Ok(v) => return Ok(v),
                Err(failure) if !failure.transient() || attempts > self.retries => {
                    return Err(CallError { failure, attempts })
                }
                Err(_) => {
                    let wait = 0.5 * 2f64.powi(attempts as i32 - 1);
                    std::thread::sleep(Duration::from_secs_f64(wait.min(8.0)));
                    attempts += 1;
                }
            }
        }
    }

    fn once(&self, mut call: ureq::Request, body: Option<&Value>) -> Result<Value, Failure> {
        if let Some(key) = &self.key {
            call = call.set("Authorization", &format!("Bearer {key}"));
        }
        let sent = match body {
            Some(b) => call.set("Content-Type", "application/json").send_json(b),
            None => call.call(),
        };
        match sent {
            Ok(response) => response.into_json().map_err(|e| {
                if is_timeout(&e) {
                    Failure::Timeout(self.timeout)
                } else {
                    Failure::NotJson(e.to_string())
                }
            }),
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
                Err(Failure::Status(status, message))
            }
            Err(ureq::Error::Transport(t)) => {
                if t.kind() == ureq::ErrorKind::Io && transport_timed_out(&t) {
                    Err(Failure::Timeout(self.timeout))
                } else {
                    let f = Failure::Unreachable(t.to_string());
                    match t.kind() {
                        ureq::ErrorKind::ConnectionFailed
                        | ureq::ErrorKind::Dns
                        | ureq::ErrorKind::Io => Err(f),
                        _ => Err(Failure::Unsendable(t.to_string())),
                    }
                }
            }
        }
    }
}

/// The API base (`http://h:8080/v1`) of what a user may pass: the base itself, or one of its
/// endpoints (`…/v1/chat/completions`, `…/v1/completions`). `None` when it is not an http(s)
/// URL.
pub fn api_base(given: &str) -> Option<String> {
    let trimmed = given.trim().trim_end_matches('/');
    let (scheme, rest) = trimmed.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.starts_with('/') {
        return None;
    }
    let base = ["/chat/completions", "/completions"]
        .iter()
        .find_map(|e| trimmed.strip_suffix(e))
        .unwrap_or(trimmed);
    Some(base.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_found_behind_an_endpoint() {
        assert_eq!(api_base("http://h:1/v1/").as_deref(), Some("http://h:1/v1"));
        assert_eq!(
            api_base("http://h:1/v1/chat/completions").as_deref(),
            Some("http://h:1/v1")
        );
        assert_eq!(
            api_base("https://h/v1/completions").as_deref(),
            Some("https://h/v1")
        );
        assert_eq!(api_base("h:1/v1"), None);
        assert_eq!(api_base("ftp://h/v1"), None);
    }

    #[test]
    fn only_passing_failures_are_retried() {
        assert!(Failure::Status(503, String::new()).transient());
        assert!(Failure::Status(429, String::new()).transient());
        assert!(!Failure::Status(400, String::new()).transient());
        assert!(!Failure::Unsendable(String::new()).transient());
        assert!(Failure::Timeout(Duration::from_secs(1)).transient());
    }
}
