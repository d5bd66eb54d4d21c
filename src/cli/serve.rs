//! `ouroboros serve`: a model behind an OpenAI-compatible API (see `crate::serve`): a diffusion
//! checkpoint (the generator, for `refactor` on other machines and any OpenAI client) or a chat
//! model (the reasoner).

use std::io::Write;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::exit;
use crate::device::{DeviceSpec, Precision};
use crate::engine::{Engine, ModelChoice};
use crate::reasoner::local::LocalChat;
use crate::serve::{self, Backend, ChatBackend, DiffusionBackend, Limits};

/// When set, clients must send `Authorization: Bearer <value>`.
pub const SERVE_KEY_ENV: &str = "OUROBOROS_SERVE_API_KEY";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A diffusion checkpoint (any that `generate` takes: a directory, hub id or manifest
    /// name), or a chat model (a GGUF file, or a llama/qwen2 Hugging Face directory). Default:
    /// the same diffusion model as every other command.
    #[arg(long, value_name = "FILE|DIR|ID")]
    pub model: Option<String>,
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
    pub device: DeviceSpec,
    /// Diffusion checkpoints: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: Precision,
    /// Require `Authorization: Bearer KEY`, with KEY read from this environment variable
    /// (never from the command line, where `ps` shows it). Default: OUROBOROS_SERVE_API_KEY
    /// when it is set.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Diffusion checkpoints: serve only the standard OpenAI routes, without Ouroboros's own
    /// (`/v1/ouroboros/*`) and their fields, as another engine would; clients then infill and
    /// instruct through completions and chat, and repair by regenerating.
    #[arg(long)]
    pub openai_only: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let addr = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .with_context(|| format!("--host {} --port {}", args.host, args.port))?
        .next()
        .with_context(|| format!("--host {}: no address", args.host))?;
    let backend = backend(&args)?;
    let name = backend.name().to_string();
    let key = match &args.api_key_env {
        Some(var) => match std::env::var(var).ok().filter(|k| !k.is_empty()) {
            Some(k) => Some(k),
            None => bail!("--api-key-env {var}: the variable is not set (or empty)"),
        },
        None => std::env::var(SERVE_KEY_ENV).ok().filter(|k| !k.is_empty()),
    };
    serve::serve(backend, addr, key, Limits::default(), |bound| {
        println!("listening on http://{bound}/v1 (model {name})");
        let _ = std::io::stdout().flush();
    })
    .with_context(|| format!("--host {} --port {}", args.host, args.port))?;
    Ok(ExitCode::from(exit::OK))
}

/// Whether a directory holds a diffusion checkpoint: its config.json says so, or a manifest
/// (its own `ouroboros.json`, or one its folder is named after) does.
fn diffusion_dir(p: &std::path::Path) -> bool {
    crate::diffusion::is_diffusion_checkpoint(p)
        || p.to_str()
            .and_then(|s| crate::models::resolve(s).ok())
            .is_some_and(|r| r.manifest.is_some())
}

/// A chat model for a GGUF file or a directory no diffusion family claims; otherwise the
/// diffusion engine.
fn backend(args: &Args) -> anyhow::Result<Box<dyn Backend>> {
    let chat_path = args
        .model
        .as_deref()
        .map(PathBuf::from)
        .filter(|p| p.is_file() || (p.is_dir() && !diffusion_dir(p)));
    if let Some(path) = chat_path {
        if args.openai_only {
            bail!("--openai-only is for diffusion checkpoints (a chat model serves only chat)");
        }
        let device = args.device.open()?;
        let chat = LocalChat::load(&path, &device)
            .with_context(|| format!("--model {}", path.display()))?;
        let name = args.name.clone().unwrap_or_else(|| chat.name().to_string());
        return Ok(Box::new(ChatBackend::new(chat, name)));
    }
    if let Some(m) = &args.model {
        if m.ends_with(".gguf") {
            bail!("--model {m}: no such file");
        }
    }
    let engine = Engine::load(&ModelChoice {
        model: args.model.clone(),
        device: args.device,
        dtype: args.dtype,
    })?;
    let weights = engine.weights_sha256()?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| engine.model.name.clone());
    let backend = DiffusionBackend::new(engine, name, weights)?;
    Ok(Box::new(match args.openai_only {
        true => backend.openai_only(),
        false => backend,
    }))
}
