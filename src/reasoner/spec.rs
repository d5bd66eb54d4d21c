//! Which chat model refines the plan, as a run asks for it and records it: the graph alone
//! (default), an in-process model (GGUF or Hugging Face), or an OpenAI-compatible endpoint.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::chat::{ChatError, ChatModel};
use super::local::LocalChat;
use super::refine;
use super::remote::{completions_url, RemoteChat, API_KEY_ENV};
use crate::device::{DeviceError, DeviceSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasonerKind {
    /// In this process: the graph planner, refined by a chat model file if one is given.
    #[default]
    Local,
    /// An OpenAI-compatible Chat Completions endpoint.
    Remote,
}

impl std::str::FromStr for ReasonerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(ReasonerKind::Local),
            "remote" => Ok(ReasonerKind::Remote),
            other => Err(format!("{other}: expected local or remote")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("--reasoner-timeout {0}: must be a positive number of seconds")]
    Timeout(f64),
    #[error("--reasoner-max-tokens must be at least 1")]
    MaxTokens,
    #[error("--reasoner-url {0}: only with --reasoner remote")]
    UrlWithoutRemote(String),
    #[error("--reasoner-model {0}: no such file (with --reasoner local it is a GGUF chat model file or a Hugging Face checkpoint directory; a served model needs --reasoner remote)")]
    NoFile(String),
    #[error("--reasoner remote needs --reasoner-url (the endpoint's API base, such as http://127.0.0.1:8080/v1)")]
    NoUrl,
    #[error("--reasoner-url {0}: not an http:// or https:// URL")]
    BadUrl(String),
    #[error("--reasoner remote needs --reasoner-model (the model name the endpoint serves)")]
    NoModel,
    #[error(transparent)]
    Offline(#[from] crate::offline::Refused),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("--reasoner-model {file}")]
    Load {
        file: String,
        #[source]
        source: ChatError,
    },
}

/// The reasoner a run uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonerSpec {
    pub kind: ReasonerKind,
    /// local: a GGUF file or checkpoint directory; remote: the served model's name.
    pub model: Option<String>,
    /// remote: the API base (http://HOST:PORT/v1) or its /chat/completions URL.
    pub url: Option<String>,
    /// Seconds to wait for each answer.
    pub timeout: f64,
    /// Further attempts after a connection failure, timeout, 429 or 5xx.
    pub retries: usize,
    pub max_tokens: usize,
}

impl Default for ReasonerSpec {
    fn default() -> Self {
        ReasonerSpec {
            kind: ReasonerKind::Local,
            model: None,
            url: None,
            timeout: 120.0,
            retries: 2,
            max_tokens: 512,
        }
    }
}

impl ReasonerSpec {
    /// Every setting checked, before any model loads or any connection opens.
    pub fn check(&self) -> Result<(), SpecError> {
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            return Err(SpecError::Timeout(self.timeout));
        }
        if self.max_tokens == 0 {
            return Err(SpecError::MaxTokens);
        }
        match self.kind {
            ReasonerKind::Local => {
                if let Some(url) = &self.url {
                    return Err(SpecError::UrlWithoutRemote(url.clone()));
                }
                if let Some(file) = &self.model {
                    if !Path::new(file).exists() {
                        return Err(SpecError::NoFile(file.clone()));
                    }
                }
            }
            ReasonerKind::Remote => {
                let given = self.url.as_ref().ok_or(SpecError::NoUrl)?;
                let url = completions_url(given).ok_or_else(|| SpecError::BadUrl(given.clone()))?;
                if self.model.is_none() {
                    return Err(SpecError::NoModel);
                }
                crate::offline::check(&format!("--reasoner remote ({url})"))?;
            }
        }
        Ok(())
    }

    /// The chat model to refine plans with, or `None` for the graph plan alone.
    pub fn open(&self, device: DeviceSpec) -> Result<Option<Box<dyn ChatModel>>, SpecError> {
        self.check()?;
        let Some(model) = &self.model else {
            return Ok(None);
        };
        match self.kind {
            ReasonerKind::Local => {
                let device = device.open()?;
                let chat = LocalChat::load(Path::new(model), &device).map_err(|source| {
                    SpecError::Load {
                        file: model.clone(),
                        source,
                    }
                })?;
                Ok(Some(Box::new(chat)))
            }
            ReasonerKind::Remote => {
                let url = self
                    .url
                    .as_deref()
                    .and_then(completions_url)
                    .ok_or(SpecError::NoUrl)?;
                let key = std::env::var(API_KEY_ENV).ok().filter(|k| !k.is_empty());
                Ok(Some(Box::new(RemoteChat::new(
                    url,
                    model.clone(),
                    key,
                    Duration::from_secs_f64(self.timeout),
                    self.retries,
                ))))
            }
        }
    }

    pub fn options(&self, seed: u64) -> refine::Options {
        refine::Options {
            max_tokens: self.max_tokens,
            temperature: 0.0,
            seed,
        }
    }
}
