//! The reasoner flags `plan` and `refactor` share, parsed into a [`ReasonerSpec`].

use crate::reasoner::spec::{ReasonerKind, ReasonerSpec};

#[derive(Debug, Clone, clap::Args)]
pub struct ReasonerArgs {
    /// local (the graph planner, optionally refined by a chat model run in-process) or
    /// remote (an OpenAI-compatible endpoint: vLLM, SGLang, llama.cpp, Ollama, `ouroboros
    /// serve`). The key, if the endpoint needs one, comes from OUROBOROS_API_KEY.
    #[arg(long, default_value = "local")]
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

impl ReasonerArgs {
    /// The reasoner these flags ask for, every setting checked.
    pub fn spec(&self) -> anyhow::Result<ReasonerSpec> {
        let spec = ReasonerSpec {
            kind: self.reasoner,
            model: self.reasoner_model.clone(),
            url: self.reasoner_url.clone(),
            timeout: self.reasoner_timeout,
            retries: self.reasoner_retries,
            max_tokens: self.reasoner_max_tokens,
        };
        spec.check()?;
        Ok(spec)
    }
}
