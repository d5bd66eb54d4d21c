//! `ouroboros serve`: a model behind an OpenAI-compatible API (see `crate::serve`).

use std::io::Write;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::exit;
use crate::device::DeviceSpec;
use crate::reasoner::local::LocalChat;
use crate::serve::{self, ChatBackend, Limits};

/// When set, clients must send `Authorization: Bearer <value>`.
pub const SERVE_KEY_ENV: &str = "OUROBOROS_SERVE_API_KEY";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A chat model: a GGUF file or a Hugging Face checkpoint directory (llama or qwen2).
    #[arg(long, value_name = "FILE|DIR")]
    pub model: PathBuf,
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
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.model.exists() {
        bail!("--model {}: no such file", args.model.display());
    }
    let addr = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .with_context(|| format!("--host {} --port {}", args.host, args.port))?
        .next()
        .with_context(|| format!("--host {}: no address", args.host))?;
    let device = args.device.open()?;
    let chat = LocalChat::load(&args.model, &device)
        .with_context(|| format!("--model {}", args.model.display()))?;
    let name = args.name.clone().unwrap_or_else(|| chat.name().to_string());
    let key = std::env::var(SERVE_KEY_ENV).ok().filter(|k| !k.is_empty());
    let backend = Box::new(ChatBackend::new(chat, name.clone()));
    serve::serve(backend, addr, key, Limits::default(), |bound| {
        println!("listening on http://{bound}/v1 (model {name})");
        let _ = std::io::stdout().flush();
    })
    .with_context(|| format!("--host {} --port {}", args.host, args.port))?;
    Ok(ExitCode::from(exit::OK))
}
