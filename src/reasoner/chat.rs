//! What the reasoner asks a chat model, and what comes back, whichever side of a network the
//! model is on.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message {
            role: "system".into(),
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub max_tokens: usize,
    /// 0 means greedy.
    pub temperature: f64,
    pub seed: u64,
    /// A JSON schema the answer should follow. Servers that support OpenAI's structured
    /// outputs (vLLM, SGLang, llama.cpp, Ollama) enforce it; the in-process model does not, so
    /// answers are validated either way.
    pub json_schema: Option<serde_json::Value>,
    /// The same form as a byte automaton, which in-process models decode under (servers get
    /// `json_schema` instead).
    pub constraint: Option<super::constrain::PlanForm>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatReply {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// `stop` (end of turn) or `length` (max_tokens reached).
    pub finish_reason: String,
}

/// Which model answered, for provenance.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// `local` (in-process) or `remote`.
    pub kind: &'static str,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Only for an in-process model, whose file we can read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{path}: {what}")]
    Model {
        path: String,
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("the prompt is {prompt} tokens and {max_tokens} more were asked for, over the model's context of {context}")]
    TooLong {
        prompt: usize,
        max_tokens: usize,
        context: usize,
    },
    #[error("generating")]
    Generate(#[source] candle_core::Error),
    #[error("no token of the vocabulary continues the answer form")]
    NoContinuation,
    #[error("reasoner endpoint {url}: cannot connect after {attempts} attempt(s): {detail} (is the server running, and is --reasoner-url right?)")]
    Unreachable {
        url: String,
        attempts: usize,
        detail: String,
    },
    #[error("reasoner endpoint {url}: no answer within {seconds} s, {attempts} attempt(s) (raise --reasoner-timeout for slow models)")]
    Timeout {
        url: String,
        seconds: f64,
        attempts: usize,
    },
    #[error("reasoner endpoint {url}: HTTP {status}: {message}{hint}")]
    Http {
        url: String,
        status: u16,
        message: String,
        hint: &'static str,
    },
    #[error("reasoner endpoint {url}: the reply is not an OpenAI chat completion: {detail}")]
    BadReply { url: String, detail: String },
}

/// A chat model: in-process (GGUF) or behind an OpenAI-compatible endpoint.
pub trait ChatModel {
    fn info(&self) -> ModelInfo;
    fn complete(&mut self, request: &ChatRequest) -> Result<ChatReply, ChatError>;
}
