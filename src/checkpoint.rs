//! What every stage that loads a checkpoint shares: where its weights are, their identity for
//! provenance and caches, and its chat template. The diffusion generator, the reasoner's chat
//! models and the causal scorer all read Hugging Face directories the same way.

use std::path::{Path, PathBuf};

use crate::hash::{file_sha256, sha256_tagged};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{dir}: no weights (expected model.safetensors, or model.safetensors.index.json with its shards)")]
    NoWeights { dir: String },
    #[error("{path}: chat_template: {source}")]
    Template {
        path: String,
        #[source]
        source: minijinja::Error,
    },
}

fn file_error(path: &Path, message: impl ToString) -> CheckpointError {
    CheckpointError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Where Ouroboros keeps per-user data that can be rebuilt: `$XDG_CACHE_HOME/ouroboros`, else
/// `~/.cache/ouroboros`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("ouroboros")
}

/// The safetensors files of a checkpoint: one file, or the shards its index names.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, CheckpointError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| file_error(&index, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| file_error(&index, e))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| file_error(&index, "missing field `weight_map`"))?;
        let mut shards: Vec<String> = map
            .values()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        shards.sort();
        shards.dedup();
        let mut files = Vec::new();
        for s in shards {
            if s.contains('/') || s.contains("..") {
                return Err(file_error(
                    &index,
                    format!("shard name `{s}` is not a plain file name"),
                ));
            }
            let p = dir.join(&s);
            if !p.is_file() {
                return Err(file_error(
                    &index,
                    format!("names shard `{s}`, which is missing"),
                ));
            }
            files.push(p);
        }
        return Ok(files);
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(CheckpointError::NoWeights {
        dir: dir.display().to_string(),
    })
}

/// Files at least this large have their hash remembered (smaller ones hash faster than the memo
/// is read).
const MEMO_MIN_BYTES: u64 = 64 << 20;

/// The weights' identity for provenance and caches: `sha256:<hex>` of the file for a single
/// safetensors file (what `sha256sum` prints), else the sha256 of the lines `<name> <sha256>` of
/// each shard in name order. Large files are hashed once per change (the memo in
/// [`cache_dir`]).
pub fn weights_sha256(shards: &[PathBuf]) -> std::io::Result<String> {
    let memo = cache_dir().join("file-hashes.json");
    let file_sha = |p: &Path| file_sha256(p, Some(&memo), MEMO_MIN_BYTES);
    if let [one] = shards {
        return Ok(format!("sha256:{}", file_sha(one)?));
    }
    let mut sorted: Vec<&PathBuf> = shards.iter().collect();
    sorted.sort_by_key(|p| p.file_name().map(|n| n.to_os_string()));
    let mut lines = String::new();
    for p in sorted {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        lines.push_str(&format!("{name} {}\n", file_sha(p)?));
    }
    Ok(sha256_tagged(lines.as_bytes()))
}

/// A checkpoint's chat template, ready to render conversations.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    bos: String,
    eos: String,
}

/// The template of the checkpoint in `dir` (`tokenizer_config.json`): `Ok(None)` when it has
/// none (a base model), `Err` when the file or the template cannot be read.
pub fn chat_template(dir: &Path) -> Result<Option<ChatTemplate>, CheckpointError> {
    let path = dir.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| file_error(&path, e))?;
    let cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| file_error(&path, e))?;
    let Some(template) = cfg.get("chat_template").and_then(|t| t.as_str()) else {
        return Ok(None);
    };
    let token = |k: &str| {
        cfg.get(k)
            .and_then(|v| {
                v.as_str().map(str::to_string).or_else(|| {
                    v.get("content")
                        .and_then(|c| c.as_str())
                        .map(str::to_string)
                })
            })
            .unwrap_or_default()
    };
    ChatTemplate::new(template.to_string(), token("bos_token"), token("eos_token"))
        .map(Some)
        .map_err(|source| CheckpointError::Template {
            path: path.display().to_string(),
            source,
        })
}

impl ChatTemplate {
    /// A Jinja chat template, with the special tokens templates refer to by name.
    pub fn new(
        template: String,
        bos: String,
        eos: String,
    ) -> Result<ChatTemplate, minijinja::Error> {
        let mut env = minijinja::Environment::new();
        env.add_template_owned("chat", template)?;
        Ok(ChatTemplate { env, bos, eos })
    }

    pub fn render(&self, user: &str) -> Result<String, minijinja::Error> {
        self.render_messages(&[("user", user)])
    }

    /// The prompt for these (role, content) turns, ending where the answer starts.
    pub fn render_messages(&self, messages: &[(&str, &str)]) -> Result<String, minijinja::Error> {
        let messages: Vec<_> = messages
            .iter()
            .map(|(role, content)| minijinja::context! { role => role, content => content })
            .collect();
        self.env.get_template("chat")?.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => &self.bos,
            eos_token => &self.eos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_hash_is_the_file_hash_or_a_hash_over_shards() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("model-00001.safetensors");
        let b = dir.path().join("model-00002.safetensors");
        std::fs::write(&a, b"abc").unwrap();
        std::fs::write(&b, b"def").unwrap();
        assert_eq!(
            weights_sha256(std::slice::from_ref(&a)).unwrap(),
            sha256_tagged(b"abc")
        );
        let both = weights_sha256(&[b.clone(), a.clone()]).unwrap();
        assert_eq!(both, weights_sha256(&[a.clone(), b.clone()]).unwrap());
        let lines = format!(
            "model-00001.safetensors {}\nmodel-00002.safetensors {}\n",
            &sha256_tagged(b"abc")[7..],
            &sha256_tagged(b"def")[7..]
        );
        assert_eq!(both, sha256_tagged(lines.as_bytes()));
        std::fs::write(&b, b"deg").unwrap();
        assert_ne!(weights_sha256(&[a, b]).unwrap(), both);
    }

    #[test]
    fn shard_indexes_must_name_plain_files_that_exist() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            weight_files(dir.path()),
            Err(CheckpointError::NoWeights { .. })
        ));
        let index = dir.path().join("model.safetensors.index.json");
        std::fs::write(&index, r#"{"weight_map": {"a": "../x.safetensors"}}"#).unwrap();
        let e = weight_files(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a plain file name"), "{e}");
        std::fs::write(&index, r#"{"weight_map": {"a": "s1.safetensors"}}"#).unwrap();
        let e = weight_files(dir.path()).unwrap_err().to_string();
        assert!(e.contains("which is missing"), "{e}");
    }
}
