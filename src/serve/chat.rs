//! A chat model (GGUF or Hugging Face) behind `/v1/chat/completions`: the reasoner of the
//! machines that point `--reasoner remote` here. Structured output (`response_format`) is
//! enforced for the reasoner's plan schema (see `PlanForm::from_schema`) and otherwise accepted
//! and not enforced; the reasoner validates answers either way. Streaming is refused.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::{bad_request, internal, ApiError, Backend, Route};
use crate::reasoner::chat::{ChatError, ChatModel, ChatRequest, Message};
use crate::reasoner::constrain::PlanForm;
use crate::reasoner::local::LocalChat;

/// The most tokens one answer may ask for.
pub const MAX_TOKENS: u64 = 1 << 16;

pub struct ChatBackend {
    chat: LocalChat,
    name: String,
    served: u64,
}

impl ChatBackend {
    pub fn new(chat: LocalChat, name: String) -> ChatBackend {
        ChatBackend {
            chat,
            name,
            served: 0,
        }
    }
}

/// The text of an OpenAI message's content: a string, or a list of `{"type": "text"}` parts.
pub(super) fn content_text(v: &Value) -> Option<String> {
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

/// `messages`: a non-empty list of `{role, content}`.
pub(super) fn messages(req: &Value) -> Result<Vec<Message>, ApiError> {
    req.get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad_request("\"messages\" must be a non-empty list"))?
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
                _ => Err(bad_request(format!(
                    "messages[{i}] needs a \"role\" and a text \"content\""
                ))),
            }
        })
        .collect()
}

/// A whole number of tokens in 1..=`most`, from `max_completion_tokens` or `max_tokens`.
pub(super) fn max_tokens(req: &Value, default: u64, most: u64) -> Result<usize, ApiError> {
    for field in ["max_completion_tokens", "max_tokens"] {
        let Some(v) = req.get(field) else { continue };
        return match v.as_u64() {
            Some(n) if (1..=most).contains(&n) => Ok(n as usize),
            _ => Err(bad_request(format!(
                "{field} {v}: must be a whole number from 1 to {most}"
            ))),
        };
    }
    Ok(default as usize)
}

/// A number in `range`, or its default.
pub(super) fn number_in(
    req: &Value,
    field: &str,
    default: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, ApiError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_f64() {
            Some(x) if range.contains(&x) => Ok(x),
            _ => Err(bad_request(format!(
                "{field} {v}: must be a number from {} to {}",
                range.start(),
                range.end()
            ))),
        },
    }
}

impl Backend for ChatBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn routes(&self) -> &'static [Route] {
        &[Route::ChatCompletions]
    }

    fn handle(&mut self, _route: Route, req: &Value) -> Result<Value, ApiError> {
        if req.get("stream").and_then(Value::as_bool) == Some(true) {
            return Err(bad_request("\"stream\": true is not supported"));
        }
        let request = ChatRequest {
            messages: messages(req)?,
            max_tokens: max_tokens(req, 256, MAX_TOKENS)?,
            temperature: number_in(req, "temperature", 1.0, 0.0..=2.0)?,
            seed: req.get("seed").and_then(Value::as_u64).unwrap_or(0),
            json_schema: None,
            constraint: req
                .pointer("/response_format/json_schema/schema")
                .and_then(PlanForm::from_schema),
        };
        let reply = self.chat.complete(&request).map_err(|e| match e {
            ChatError::TooLong { .. } => bad_request(e.to_string()),
            other => internal("while generating", &other),
        })?;
        self.served += 1;
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(json!({
            "id": format!("chatcmpl-{}", self.served),
            "object": "chat.completion",
            "created": created,
            "model": self.name,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_tokens_is_a_bounded_whole_number() {
        assert_eq!(max_tokens(&json!({}), 256, 100).unwrap(), 256);
        assert_eq!(max_tokens(&json!({"max_tokens": 7}), 256, 100).unwrap(), 7);
        for bad in [
            json!(0),
            json!(1.5),
            json!(-3),
            json!(18446744073709551615u64),
            json!("9"),
        ] {
            let e = max_tokens(&json!({ "max_tokens": bad }), 256, 100).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.starts_with("max_tokens "), "{}", e.message);
        }
        assert!(number_in(&json!({"temperature": 3}), "temperature", 1.0, 0.0..=2.0).is_err());
    }
}
