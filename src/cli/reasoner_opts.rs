//! How the plan is refined: the graph alone (default), an in-process chat model (GGUF or
//! Hugging Face), or an OpenAI-compatible endpoint.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::device::DeviceSpec;
use crate::reasoner::chat::ChatModel;
use crate::reasoner::local::LocalChat;
use crate::reasoner::refine;
use crate::reasoner::remote::{completions_url, RemoteChat, API_KEY_ENV};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasonerKind {
    /// In this process: the graph planner, refined by --reasoner-model FILE.gguf|DIR if given.
    #[default]
    Local,
    /// An OpenAI-compatible Chat Completions endpoint (--reasoner-url, --reasoner-model).
    Remote,
}

#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct ReasonerArgs {
    /// local (the graph planner, optionally refined by a chat model run in-process) or
    /// remote (an OpenAI-compatible endpoint: vLLM, SGLang, llama.cpp, Ollama, `ouroboros
    /// serve`). The key, if the endpoint needs one, comes from OUROBOROS_API_KEY.
    #[arg(long, value_enum, default_value = "local")]
    pub reasoner: ReasonerKind,
    /// local: a chat model, as a GGUF file or a Hugging Face checkpoint directory (llama or
    /// qwen2 architecture); remote: the model name the endpoint serves.
    #[arg(long, value_name = "FILE|NAME")]
    pub reasoner_model: Option<String>,
    /// The endpoint's API base (http://HOST:PORT/v1) or its /chat/completions URL.
    #[arg(long, value_name = "URL")]
    pub reasoner_url: Option<String>,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    pub reasoner_timeout: f64,
    /// Further attempts after a connection failure, timeout, 429 or 5xx.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub reasoner_retries: usize,
    /// Most tokens in the reasoner's answer.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub reasoner_max_tokens: usize,
}

impl Default for ReasonerArgs {
    fn default() -> Self {
        ReasonerArgs {
            reasoner: ReasonerKind::Local,
            reasoner_model: None,
            reasoner_url: None,
            reasoner_timeout: 120.0,
            reasoner_retries: 2,
            reasoner_max_tokens: 512,
        }
    }
}

impl ReasonerArgs {
    /// The chat model to refine plans with, or `None` for the graph plan alone. Every flag is
    /// checked here, before any model loads or any connection opens.
    pub fn open(&self, device: &DeviceSpec) -> anyhow::Result<Option<Box<dyn ChatModel>>> {
        if !(self.reasoner_timeout.is_finite() && self.reasoner_timeout > 0.0) {
            bail!(
                "--reasoner-timeout {}: must be a positive number of seconds",
                self.reasoner_timeout
            );
        }
        if self.reasoner_max_tokens == 0 {
            bail!("--reasoner-max-tokens must be at least 1");
        }
        match self.reasoner {
            ReasonerKind::Local => {
                if let Some(url) = &self.reasoner_url {
                    bail!("--reasoner-url {url}: only with --reasoner remote");
                }
                let Some(file) = &self.reasoner_model else {
                    return Ok(None);
                };
                let path = Path::new(file);
                if !path.exists() {
                    bail!(
                        "--reasoner-model {file}: no such file (with --reasoner local it is a GGUF chat model file or a Hugging Face checkpoint directory; a served model needs --reasoner remote)"
                    );
                }
                let device = device.open()?;
                let chat = LocalChat::load(path, &device)
                    .with_context(|| format!("--reasoner-model {file}"))?;
                Ok(Some(Box::new(chat)))
            }
            ReasonerKind::Remote => {
                let Some(given) = &self.reasoner_url else {
                    bail!("--reasoner remote needs --reasoner-url (the endpoint's API base, such as http://127.0.0.1:8080/v1)");
                };
                let Some(url) = completions_url(given) else {
                    bail!("--reasoner-url {given}: not an http:// or https:// URL");
                };
                let Some(model) = &self.reasoner_model else {
                    bail!("--reasoner remote needs --reasoner-model (the model name the endpoint serves)");
                };
                super::refuse_network_when_offline(&format!("--reasoner remote ({url})"))?;
                let key = std::env::var(API_KEY_ENV).ok().filter(|k| !k.is_empty());
                Ok(Some(Box::new(RemoteChat::new(
                    url,
                    model.clone(),
                    key,
                    Duration::from_secs_f64(self.reasoner_timeout),
                    self.reasoner_retries,
                ))))
            }
        }
    }

    pub fn options(&self, seed: u64) -> refine::Options {
        refine::Options {
            max_tokens: self.reasoner_max_tokens,
            temperature: 0.0,
            seed,
        }
    }
}
