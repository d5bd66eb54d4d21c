//! Tokenizers come from `tokenizer.json` (the tokenizers crate reads it as is). Checkpoints that
//! ship only `vocab.json` + `merges.txt` (Dream) are refused with the one-line conversion, because
//! rebuilding a Qwen2 tokenizer from those files by hand would tokenize differently.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{dir}: no tokenizer.json. This checkpoint ships only vocab.json + merges.txt; convert once with:\n  python -c \"from transformers import AutoTokenizer as T; T.from_pretrained('{dir}', trust_remote_code=True).save_pretrained('{dir}')\"")]
    SlowOnly { dir: String },
    #[error("{dir}: no tokenizer.json")]
    Missing { dir: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: no mask token: config.json has no mask_token_id and the tokenizer has none of {candidates}")]
    NoMask { path: String, candidates: String },
    #[error("prompt: {0}")]
    Encode(String),
}

/// Token strings that mean "mask" in the supported families, in order of preference.
pub const MASK_TOKENS: &[&str] = &[
    "<|mdm_mask|>",
    "<|mask|>",
    "|<MASK>|",
    "[MASK]",
    "<mask>",
    "<M>",
];

pub struct TextCodec {
    inner: Tokenizer,
    path: PathBuf,
}

impl TextCodec {
    pub fn load(dir: &Path) -> Result<TextCodec, TokenizerError> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            let d = dir.display().to_string();
            return Err(
                if dir.join("vocab.json").is_file() && dir.join("merges.txt").is_file() {
                    TokenizerError::SlowOnly { dir: d }
                } else {
                    TokenizerError::Missing { dir: d }
                },
            );
        }
        let inner = Tokenizer::from_file(&path).map_err(|e| TokenizerError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(TextCodec { inner, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mask id: config.json's, else the first known mask token the tokenizer has.
    pub fn mask_id(&self, from_config: Option<u32>) -> Result<u32, TokenizerError> {
        if let Some(id) = from_config {
            return Ok(id);
        }
        MASK_TOKENS
            .iter()
            .find_map(|t| self.inner.token_to_id(t))
            .ok_or_else(|| TokenizerError::NoMask {
                path: self.path.display().to_string(),
                candidates: MASK_TOKENS.join(" "),
            })
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Tokenize text as is: no special tokens are added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        self.inner.decode(ids, skip_special).unwrap_or_default()
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
