//! The generator flags `plan`, `refactor`, `replay` and `bench` share, parsed into a
//! [`GeneratorSpec`].

use crate::engine::remote::{GeneratorKind, GeneratorSpec};
use crate::engine::{Engine, ModelChoice};

#[derive(Debug, Clone, clap::Args)]
pub struct GeneratorArgs {
    /// local (the diffusion model in this process) or remote (an OpenAI-compatible server:
    /// `ouroboros serve` for everything, or another engine for infill and instruct). The key,
    /// if the server needs one, comes from OUROBOROS_API_KEY.
    /// Default: local (`replay`: the run's own).
    #[arg(long)]
    pub generator: Option<GeneratorKind>,
    /// The server's API base (http://HOST:PORT/v1).
    #[arg(long, value_name = "URL")]
    pub generator_url: Option<String>,
    /// The model name the server serves (default: the one it lists first).
    #[arg(long, value_name = "NAME")]
    pub generator_model: Option<String>,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub generator_timeout: f64,
    /// Further attempts after a connection failure, timeout, 429 or 5xx.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub generator_retries: usize,
}

impl GeneratorArgs {
    /// The generator these flags ask for, every setting checked (nothing connects yet).
    pub fn spec(&self) -> anyhow::Result<GeneratorSpec> {
        let spec = GeneratorSpec {
            kind: self.generator.unwrap_or_default(),
            url: self.generator_url.clone(),
            model: self.generator_model.clone(),
            timeout: self.generator_timeout,
            retries: self.generator_retries,
        };
        spec.check()?;
        Ok(spec)
    }

    /// The spec when any generator flag was given, for `replay` (which otherwise uses the
    /// run's).
    pub fn given(&self) -> anyhow::Result<Option<GeneratorSpec>> {
        let any = self.generator.is_some()
            || self.generator_url.is_some()
            || self.generator_model.is_some();
        Ok(if any { Some(self.spec()?) } else { None })
    }

    /// The engine: `choice` loaded here, or the remote server's checkpoint.
    pub fn open(&self, choice: &ModelChoice) -> anyhow::Result<Engine> {
        let engine = Engine::open(choice, &self.spec()?)?;
        if let Some(note) = engine.remote.as_ref().and_then(|r| r.notice()) {
            eprintln!("warning: {note}");
        }
        Ok(engine)
    }
}
