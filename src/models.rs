//! Which checkpoints we know (the manifests under `models/`, compiled in), and resolving a
//! `--model` reference to a local directory. Nothing here touches the network except
//! [`pull`], which runs only when the user asks (`ouroboros models pull`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diffusion::{Family, Overrides};
use crate::hash::sha256_tagged;

/// One supported checkpoint, as described in `models/<name>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub hub_id: String,
    pub revision: String,
    pub family: Family,
    pub mask_token_id: Option<u32>,
    pub logit_shift: bool,
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
    pub recommended: Recommended,
    #[serde(default)]
    pub notes: String,
    /// Known file hashes (`sha256:…`), by file name.
    #[serde(default)]
    pub sha256: std::collections::BTreeMap<String, String>,
    /// Functional-benchmark figures the checkpoint's authors report, with their source.
    #[serde(default)]
    pub reported: Vec<Reported>,
    /// The licence of the weights.
    #[serde(default)]
    pub license: Option<String>,
    /// A2D: a block-diffusion (bd3lm) checkpoint with blocks of this size; absent for mdlm.
    #[serde(default)]
    pub block_size: Option<usize>,
    /// The chat framing its authors evaluated HumanEval/MBPP with (`bench --framing chat`):
    /// evalplus, qwencoder, lm-eval or opencompass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_framing: Option<String>,
}

/// One published figure: `value` (pass@1, percent) on `benchmark` (a `bench` kind's name).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reported {
    pub benchmark: String,
    pub value: f64,
    pub source: String,
}

impl Manifest {
    /// The figure reported for `benchmark`, if any.
    pub fn reported_for(&self, benchmark: &str) -> Option<&Reported> {
        self.reported.iter().find(|r| r.benchmark == benchmark)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recommended {
    pub sampler: String,
    pub steps: usize,
    pub gen_length: usize,
    pub block_length: usize,
    pub temperature: f64,
    #[serde(default)]
    pub top_p: Option<f64>,
}

pub use crate::checkpoint::{cache_dir, weights_sha256};

const MANIFESTS: &[&str] = &[
    include_str!("../models/llada-8b-base.json"),
    include_str!("../models/llada-8b-instruct.json"),
    include_str!("../models/dream-v0-base-7b.json"),
    include_str!("../models/dream-v0-instruct-7b.json"),
    include_str!("../models/dream-coder-v0-instruct-7b.json"),
    include_str!("../models/diffucoder-7b-instruct.json"),
    include_str!("../models/sdar-1.7b-chat.json"),
    include_str!("../models/sdar-4b-chat.json"),
    include_str!("../models/sdar-8b-chat.json"),
    include_str!("../models/qwen2.5-coder-0.5b-instruct-diffusion-mdlm.json"),
    include_str!("../models/qwen2.5-coder-0.5b-instruct-diffusion-bd3lm.json"),
    include_str!("../models/qwen3-0.6b-diffusion-mdlm.json"),
    include_str!("../models/qwen3-0.6b-diffusion-bd3lm.json"),
    include_str!("../models/fast-dllm-v2-1.5b.json"),
    include_str!("../models/fast-dllm-v2-7b.json"),
    include_str!("../models/open-dcoder-0.5b.json"),
];

pub fn manifests() -> Vec<Manifest> {
    MANIFESTS
        .iter()
        .map(|m| serde_json::from_str(m).expect("bundled manifests are valid (checked by a test)"))
        .collect()
}

impl Manifest {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            family: Some(self.family),
            logit_shift: Some(self.logit_shift),
            mask_id: self.mask_token_id,
            block_size: self.block_size,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("--model {0}: not a directory, and not a hub id of the form ORG/NAME")]
    NotFound(String),
    #[error("--model {id}: not in the local Hugging Face cache ({cache}); download it first with `ouroboros models pull {id}` (nothing is downloaded without asking)")]
    NotCached { id: String, cache: String },
    #[error("no --model given, OUROBOROS_MODEL is not set, and the bundled model is missing from {looked} (export it with models/ouro-code-tiny/train/export.py, or pass --model DIR)")]
    NoDefault { looked: String },
    #[error("models pull {id}: {message}")]
    Pull { id: String, message: String },
    #[error("{path}: {message} (a local manifest has the fields of models/*.json)")]
    LocalManifest { path: String, message: String },
}

/// A checkpoint directory's own manifest, for checkpoints no bundled manifest knows (a
/// conversion of your own, say) whose config.json does not say everything.
pub const LOCAL_MANIFEST: &str = "ouroboros.json";

/// The bundled default model's name: `--model ouro-code-tiny` names it too.
pub const BUNDLED: &str = "ouro-code-tiny";

/// Where the bundled model is: next to the executable (`models/ouro-code-tiny`, for packaged
/// copies), else in the source tree the binary was built from. `None` when neither holds a
/// complete model (the weights are exported by its training scripts).
pub fn bundled_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(exe_dir.join("models").join(BUNDLED));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(BUNDLED),
    );
    candidates.into_iter().find(|d| {
        ["config.json", "tokenizer.json", "model.safetensors"]
            .iter()
            .all(|f| d.join(f).is_file())
    })
}

/// The model used when `--model` is not given: `$OUROBOROS_MODEL` if set, else the bundled one.
pub fn default_reference() -> Result<String, ResolveError> {
    if let Ok(m) = std::env::var("OUROBOROS_MODEL") {
        if !m.trim().is_empty() {
            return Ok(m);
        }
    }
    bundled_dir()
        .map(|d| d.display().to_string())
        .ok_or_else(|| ResolveError::NoDefault {
            looked: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("models")
                .join(BUNDLED)
                .display()
                .to_string(),
        })
}

/// A model reference resolved to a directory, with the manifest that describes it, if any.
#[derive(Debug)]
pub struct Resolved {
    pub dir: PathBuf,
    pub manifest: Option<Manifest>,
}

/// A directory path, or a hub id / manifest name looked up in the local HF cache.
pub fn resolve(reference: &str) -> Result<Resolved, ResolveError> {
    if reference == BUNDLED {
        if let Some(dir) = bundled_dir() {
            return Ok(Resolved {
                dir,
                manifest: None,
            });
        }
    }
    let path = Path::new(reference);
    if path.is_dir() {
        let local = path.join(LOCAL_MANIFEST);
        if local.is_file() {
            let bad = |message: String| ResolveError::LocalManifest {
                path: local.display().to_string(),
                message,
            };
            let text = std::fs::read_to_string(&local).map_err(|e| bad(e.to_string()))?;
            let manifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            return Ok(Resolved {
                dir: path.to_path_buf(),
                manifest: Some(manifest),
            });
        }
        // A local copy is known by its folder's name: the manifest's, or its hub repository's
        // (what `git clone` and `huggingface-cli download --local-dir` name it).
        let folder = path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
            .unwrap_or_default();
        let manifest = manifests().into_iter().find(|m| {
            let repo = m.hub_id.rsplit('/').next().unwrap_or(&m.hub_id);
            folder == m.name.to_lowercase() || folder == repo.to_lowercase()
        });
        return Ok(Resolved {
            dir: path.to_path_buf(),
            manifest,
        });
    }
    let manifest = manifests()
        .into_iter()
        .find(|m| m.hub_id == reference || m.name == reference);
    let id = manifest
        .as_ref()
        .map(|m| m.hub_id.clone())
        .unwrap_or_else(|| reference.to_string());
    if !looks_like_hub_id(&id) {
        return Err(ResolveError::NotFound(reference.to_string()));
    }
    let cache = hf_hub::Cache::from_env();
    let repo = cache.model(id.clone());
    match repo
        .get("config.json")
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        Some(dir) => Ok(Resolved { dir, manifest }),
        None => Err(ResolveError::NotCached {
            id,
            cache: cache.path().display().to_string(),
        }),
    }
}

fn looks_like_hub_id(s: &str) -> bool {
    let mut parts = s.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// What a pull fetched: each file and its sha256.
#[derive(Debug, Serialize)]
pub struct PullRecord {
    pub hub_id: String,
    pub revision: String,
    pub dir: PathBuf,
    pub files: Vec<(String, String)>,
}

/// Download a checkpoint into the HF cache (config, tokenizer files, weights) and hash what
/// arrived. Hashes that a manifest knows must match.
pub fn pull(reference: &str) -> Result<PullRecord, ResolveError> {
    let manifest = manifests()
        .into_iter()
        .find(|m| m.hub_id == reference || m.name == reference);
    let id = manifest
        .as_ref()
        .map(|m| m.hub_id.clone())
        .unwrap_or_else(|| reference.to_string());
    let revision = manifest
        .as_ref()
        .map(|m| m.revision.clone())
        .unwrap_or_else(|| "main".into());
    let err = |message: String| ResolveError::Pull {
        id: id.clone(),
        message,
    };
    if !looks_like_hub_id(&id) {
        return Err(err("expected a hub id of the form ORG/NAME or a manifest name (see `ouroboros models list`)".into()));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .build()
        .map_err(|e| err(e.to_string()))?;
    let repo = api.repo(hf_hub::Repo::with_revision(
        id.clone(),
        hf_hub::RepoType::Model,
        revision.clone(),
    ));
    let info = repo.info().map_err(|e| err(e.to_string()))?;
    let wanted = |name: &str| {
        name.ends_with(".safetensors")
            || name.ends_with(".json")
            || matches!(name, "merges.txt" | "vocab.json" | "tokenizer.model")
    };
    let mut files = Vec::new();
    let mut dir = PathBuf::new();
    for sibling in info.siblings.iter().filter(|s| wanted(&s.rfilename)) {
        let path = repo
            .get(&sibling.rfilename)
            .map_err(|e| err(format!("{}: {e}", sibling.rfilename)))?;
        let bytes = std::fs::read(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let hash = sha256_tagged(&bytes);
        if let Some(expected) = manifest
            .as_ref()
            .and_then(|m| m.sha256.get(&sibling.rfilename))
        {
            if *expected != hash {
                return Err(err(format!(
                    "{}: sha256 {hash} does not match the manifest's {expected}",
                    sibling.rfilename
                )));
            }
        }
        if let Some(parent) = path.parent() {
            dir = parent.to_path_buf();
        }
        files.push((sibling.rfilename.clone(), hash));
    }
    Ok(PullRecord {
        hub_id: id,
        revision,
        dir,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_manifests_parse_and_are_unique() {
        let all = manifests();
        assert_eq!(all.len(), MANIFESTS.len());
        let mut names: Vec<_> = all.iter().map(|m| m.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for m in &all {
            assert!(looks_like_hub_id(&m.hub_id), "{}", m.hub_id);
            assert!(
                m.recommended.gen_length % m.recommended.block_length == 0,
                "{}",
                m.name
            );
            m.recommended
                .sampler
                .parse::<crate::diffusion::SamplerKind>()
                .unwrap();
        }
    }

    #[test]
    fn a_local_copy_is_known_by_its_folder_name() {
        let root = tempfile::tempdir().unwrap();
        for (folder, want) in [
            ("open-dcoder-0.5B", Some("open-dcoder-0.5b")),
            (
                "Qwen2.5-Coder-0.5B-Instruct-diffusion-bd3lm-v0.1",
                Some("qwen2.5-coder-0.5b-instruct-diffusion-bd3lm"),
            ),
            ("fast-dllm-v2-7b", Some("fast-dllm-v2-7b")),
            ("my-model", None),
        ] {
            let dir = root.path().join(folder);
            std::fs::create_dir_all(&dir).unwrap();
            let got = resolve(dir.to_str().unwrap())
                .unwrap()
                .manifest
                .map(|m| m.name);
            assert_eq!(got.as_deref(), want, "{folder}");
        }
    }

    #[test]
    fn a_local_manifest_names_what_config_json_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut m: serde_json::Value =
            serde_json::from_str(include_str!("../models/open-dcoder-0.5b.json")).unwrap();
        m["name"] = "mine".into();
        std::fs::write(dir.path().join(LOCAL_MANIFEST), m.to_string()).unwrap();
        let r = resolve(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(
            r.manifest.unwrap().family,
            crate::diffusion::Family::OpenDcoder
        );
        std::fs::write(dir.path().join(LOCAL_MANIFEST), "{\"name\": 1}").unwrap();
        let e = resolve(dir.path().to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ouroboros.json"), "{e}");
    }

    #[test]
    fn unknown_references_fail_offline_with_a_hint() {
        let e = resolve("no-such-dir").unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        std::env::set_var(
            "HF_HOME",
            std::env::temp_dir().join("ouroboros-empty-hf-home"),
        );
        let e = resolve("someorg/some-model").unwrap_err().to_string();
        assert!(
            e.contains("ouroboros models pull someorg/some-model"),
            "{e}"
        );
    }
}
