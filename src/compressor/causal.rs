//! Scoring context with a causal LM, as LongCodeZip (Shi et al. 2025) and LLMLingua (Jiang et
//! al. 2023) do: how much does a context text lower the unit's perplexity when it comes first?
//!
//! The model is a Qwen2-family checkpoint in Hugging Face layout (config.json, safetensors,
//! tokenizer.json; Qwen2.5-Coder-0.5B is a real choice), run in-process through
//! candle-transformers' `qwen2::Model`, which returns every position's hidden state so one
//! forward pass gives the loss of all the unit's tokens. The gain is the unit's mean negative
//! log-likelihood (nats per token, every token after the first) alone minus after the context.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::qwen2;
use tokenizers::Tokenizer;

use super::{CompressError, Scorer, ScorerInfo};
use crate::device::dtype_name;

/// As for the diffusion scorer: the gain ranks context, and the head of a unit is where
/// context helps most.
const MAX_UNIT_TOKENS: usize = 256;

pub struct CausalLm {
    pub name: String,
    pub dir: PathBuf,
    pub weights_sha256: String,
    model: qwen2::Model,
    /// (vocab, hidden): the output head, or the tied input embeddings.
    head: Tensor,
    tokenizer: Tokenizer,
    device: Device,
    dtype: DType,
    max_positions: usize,
}

/// What is wrong with the scoring checkpoint, in words.
fn bad(dir: &Path, what: impl Into<String>) -> CompressError {
    CompressError::Checkpoint {
        dir: dir.display().to_string(),
        what: what.into(),
        source: None,
    }
}

/// The scoring checkpoint's `what` failed with `e`.
fn failed<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    dir: &Path,
    what: &str,
) -> impl FnOnce(E) -> CompressError {
    let dir = dir.display().to_string();
    let what = what.to_string();
    move |e| CompressError::Checkpoint {
        dir,
        what,
        source: Some(e.into()),
    }
}

impl CausalLm {
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> Result<CausalLm, CompressError> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(failed(dir, "config.json"))?;
        let mut raw: serde_json::Value =
            serde_json::from_str(&text).map_err(failed(dir, "config.json"))?;
        let kind = raw["model_type"].as_str().unwrap_or("");
        if kind != "qwen2" {
            return Err(bad(
                dir,
                format!("model_type {kind:?}: the causal scorer reads qwen2 checkpoints"),
            ));
        }
        // Newer transformers write `"sliding_window": null` when the window is off.
        if raw["sliding_window"].is_null() {
            raw["sliding_window"] = raw["max_position_embeddings"].clone();
        }
        let cfg: qwen2::Config = serde_json::from_value(raw).map_err(failed(dir, "config.json"))?;
        let shards = crate::checkpoint::weight_files(dir).map_err(failed(dir, "weights"))?;
        let weights_sha256 = crate::checkpoint::weights_sha256(&shards)
            .map_err(failed(dir, "hashing the weights"))?;
        // SAFETY: the weight files are mapped read-only and not modified while the model lives,
        // as for the diffusion models (a checkpoint rewritten under a running process is not a
        // case we defend against).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&shards, dtype, device) }
            .map_err(failed(dir, "weights"))?;
        let model =
            qwen2::Model::new(&cfg, vb.clone()).map_err(failed(dir, "loading qwen2 weights"))?;
        let head_name = if !cfg.tie_word_embeddings && vb.contains_tensor("lm_head.weight") {
            "lm_head.weight"
        } else {
            "model.embed_tokens.weight"
        };
        let head = vb
            .get((cfg.vocab_size, cfg.hidden_size), head_name)
            .map_err(failed(dir, "weights"))?;
        let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(failed(dir, "tokenizer.json"))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(CausalLm {
            name,
            dir: dir.to_path_buf(),
            weights_sha256,
            model,
            head,
            tokenizer,
            device: device.clone(),
            dtype,
            max_positions: cfg.max_position_embeddings,
        })
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, CompressError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| bad(&self.dir, format!("tokenizing: {e}")))
    }

    /// Mean negative log-likelihood of `unit[1..]`, each token predicted from the one before,
    /// with `prefix` first.
    pub fn unit_nll(&mut self, prefix: &[u32], unit: &[u32]) -> Result<f64, CompressError> {
        if unit.len() < 2 {
            return Ok(0.0);
        }
        let ids: Vec<u32> = prefix.iter().chain(unit).copied().collect();
        self.model.clear_kv_cache();
        let input = Tensor::new(ids.as_slice(), &self.device)?.unsqueeze(0)?;
        let hidden = self.model.forward(&input, 0, None)?.squeeze(0)?;
        // Positions prefix+0 .. prefix+n-2 predict unit tokens 1 .. n-1.
        let predicting = hidden.narrow(0, prefix.len(), unit.len() - 1)?;
        let logits = predicting.matmul(&self.head.t()?)?.to_dtype(DType::F32)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let targets = Tensor::new(&unit[1..], &self.device)?.unsqueeze(1)?;
        let picked = logp.gather(&targets, 1)?;
        Ok(-(picked.mean_all()?.to_scalar::<f32>()? as f64))
    }
}

pub struct CausalScorer {
    lm: CausalLm,
    forwards: usize,
}

impl CausalScorer {
    pub fn new(lm: CausalLm) -> CausalScorer {
        CausalScorer { lm, forwards: 0 }
    }

    pub fn name(&self) -> &str {
        &self.lm.name
    }
}

impl Scorer for CausalScorer {
    fn info(&self) -> ScorerInfo {
        ScorerInfo {
            method: format!(
                "causal LM perplexity gain (mean NLL of the unit alone minus after the context), unit ≤ {MAX_UNIT_TOKENS} tokens"
            ),
            model: self.lm.name.clone(),
            weights_sha256: self.lm.weights_sha256.clone(),
            device: crate::device::describe(&self.lm.device),
            dtype: dtype_name(self.lm.dtype).to_string(),
        }
    }

    fn forward_passes(&self) -> usize {
        self.forwards
    }

    fn gains(&mut self, unit_code: &str, contexts: &[&str]) -> Result<Vec<f64>, CompressError> {
        let max = self.lm.max_positions;
        let mut unit = self.lm.encode(unit_code)?;
        unit.truncate(MAX_UNIT_TOKENS.min(max / 2));
        if unit.len() < 2 {
            return Ok(vec![0.0; contexts.len()]);
        }
        let base = self.lm.unit_nll(&[], &unit)?;
        self.forwards += 1;
        let mut out = Vec::with_capacity(contexts.len());
        for ctx in contexts {
            let mut ids = self.lm.encode(ctx)?;
            // Keep the context's end, next to the unit, when it must be cut: a causal model
            // reads the unit right after it.
            if ids.len() > max - unit.len() {
                ids.drain(..ids.len() - (max - unit.len()));
            }
            let with = self.lm.unit_nll(&ids, &unit)?;
            self.forwards += 1;
            out.push(base - with);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compressor/tiny-qwen2")
    }

    /// The losses PyTorch gives (tests/fixtures/compressor/make_tiny_qwen2.py), reproduced.
    #[test]
    fn unit_losses_match_the_pytorch_reference() {
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture().with_file_name("tiny-qwen2-expected.json")).unwrap(),
        )
        .unwrap();
        let mut lm = CausalLm::load(&fixture(), &Device::Cpu, DType::F32).unwrap();
        let unit = lm.encode(expected["unit"].as_str().unwrap()).unwrap();
        let cases = expected["cases"].as_array().unwrap();
        let mut losses = Vec::new();
        for case in cases {
            let prefix = case["prefix"].as_str().unwrap();
            let ids = if prefix.is_empty() {
                vec![]
            } else {
                lm.encode(prefix).unwrap()
            };
            let got = lm.unit_nll(&ids, &unit).unwrap();
            let want = case["mean_nll"].as_f64().unwrap();
            assert!((got - want).abs() < 1e-3, "{prefix:?}: {got} vs {want}");
            losses.push(got);
        }
        // And the scorer's gains are those differences.
        let contexts: Vec<&str> = cases[1..]
            .iter()
            .map(|c| c["prefix"].as_str().unwrap())
            .collect();
        let mut scorer = CausalScorer::new(lm);
        let gains = scorer
            .gains(expected["unit"].as_str().unwrap(), &contexts)
            .unwrap();
        for (g, l) in gains.iter().zip(&losses[1..]) {
            assert!((g - (losses[0] - l)).abs() < 1e-6);
        }
        assert_eq!(scorer.forward_passes(), 3);
    }

    #[test]
    fn other_architectures_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"model_type": "llada"}"#).unwrap();
        let e = CausalLm::load(dir.path(), &Device::Cpu, DType::F32)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("model_type \"llada\""), "{e}");
    }
}
