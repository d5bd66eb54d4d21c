use std::process::ExitCode;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use super::exit;
use crate::models;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// The supported checkpoints, and whether each is in the local cache.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Download a checkpoint into the Hugging Face cache and record the sha256 of every file.
    Pull {
        /// A hub id (ORG/NAME) or a manifest name from `models list`.
        id: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ModelsCommand::List { json } => {
            let all = models::manifests();
            // The bundled model is the default unless OUROBOROS_MODEL names another.
            let is_default = std::env::var("OUROBOROS_MODEL").map_or(true, |v| v.trim().is_empty());
            if json {
                let mut v = serde_json::to_value(&all)?;
                if let (Some(list), Some(dir)) = (v.as_array_mut(), models::bundled_dir()) {
                    list.push(serde_json::json!({
                        "name": models::BUNDLED,
                        "bundled": true,
                        "default": is_default,
                        "path": dir,
                        "family": "llada",
                    }));
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::from(exit::OK));
            }
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
                "name",
                "hub id",
                "family",
                "mask",
                "shift",
                "sampler",
                "steps/gen/block",
                "local",
            ]);
            for m in &all {
                let local = if models::resolve(&m.hub_id).is_ok() {
                    "yes"
                } else {
                    "no"
                };
                let r = &m.recommended;
                t.add_row(vec![
                    m.name.clone(),
                    m.hub_id.clone(),
                    m.family.name().to_string(),
                    m.mask_token_id
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "tokenizer".into()),
                    m.logit_shift.to_string(),
                    r.sampler.clone(),
                    format!("{}/{}/{}", r.steps, r.gen_length, r.block_length),
                    local.to_string(),
                ]);
            }
            match models::bundled_dir() {
                Some(dir) => t.add_row(vec![
                    format!(
                        "{} (bundled{})",
                        models::BUNDLED,
                        if is_default { ", default" } else { "" }
                    ),
                    dir.display().to_string(),
                    "llada".into(),
                    "2".into(),
                    "false".into(),
                    "low_confidence".into(),
                    "span/span/span".into(),
                    "yes".into(),
                ]),
                None => t.add_row(vec![
                    format!("{} (bundled)", models::BUNDLED),
                    "models/ouro-code-tiny (not exported)".into(),
                    "llada".into(),
                    "2".into(),
                    "false".into(),
                    "low_confidence".into(),
                    "span/span/span".into(),
                    "no".into(),
                ]),
            };
            println!("{t}");
            Ok(ExitCode::from(exit::OK))
        }
        ModelsCommand::Pull { id } => {
            crate::offline::check(&format!("models pull {id}"))?;
            let record = models::pull(&id)?;
            for (file, hash) in &record.files {
                println!("{hash}  {file}");
            }
            let dir = models::cache_dir().join("pulls");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("{}.json", record.hub_id.replace('/', "--")));
            crate::patch::atomic_write(
                &path,
                serde_json::to_string_pretty(&record)?.as_bytes(),
                None,
            )?;
            println!(
                "pulled {} ({} files) into {}\nhashes recorded in {}",
                record.hub_id,
                record.files.len(),
                record.dir.display(),
                path.display()
            );
            Ok(ExitCode::from(exit::OK))
        }
    }
}
