//! The engine against outputs of the official implementations, saved as goldens: logits of a
//! whole canvas (`golden_logits.safetensors`) and greedy generations with their settings
//! (`golden_generations.json` from LLaDA's and Dream's code, `golden_cache.json` from
//! Fast-dLLM's). The files are made by the scripts beside them in `tests/fixtures/diffusion/`.
//!
//! The golden tests read them on the CPU in f32; `ouroboros bench goldens` reads them on any
//! device and precision, which is how a new backend (CUDA, bf16) is checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use super::{generate, CacheMode, Canvas, DiffusionLm, EosPolicy, GenerateConfig};
use super::{SamplerKind, TokenSampling};

#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("{path}: case {case}: field `{field}` is missing or malformed")]
    Field {
        path: String,
        case: usize,
        field: &'static str,
    },
    #[error("{path}: no `{family}` goldens")]
    NoFamily { path: String, family: String },
    #[error("checking goldens: {0}")]
    Run(#[from] candle_core::Error),
    #[error("generating: {0}")]
    Generate(#[from] super::GenerateError),
    #[error("{0}")]
    Model(#[from] super::ModelError),
}

/// One golden generation: the settings, the prompt, and what the reference produced.
#[derive(Debug, Clone)]
pub struct Case {
    pub cfg: GenerateConfig,
    pub prompt: Vec<u32>,
    pub expected: Vec<u32>,
    /// The reference's forward passes, where it counted them.
    pub nfe: Option<usize>,
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> GoldenError {
    GoldenError::File {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// The cases for `family` in a goldens JSON file (`{family: [case, ...]}`).
pub fn cases(path: &Path, family: &str) -> Result<Vec<Case>, GoldenError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let all: Value = serde_json::from_str(&text).map_err(|e| file_error(path, e))?;
    let list = all[family]
        .as_array()
        .ok_or_else(|| GoldenError::NoFamily {
            path: path.display().to_string(),
            family: family.to_string(),
        })?;
    list.iter()
        .enumerate()
        .map(|(n, c)| {
            case(c).map_err(|field| GoldenError::Field {
                path: path.display().to_string(),
                case: n,
                field,
            })
        })
        .collect()
}

fn case(c: &Value) -> Result<Case, &'static str> {
    let ids = |k: &'static str| -> Result<Vec<u32>, &'static str> {
        c[k].as_array()
            .ok_or(k)?
            .iter()
            .map(|v| v.as_u64().map(|x| x as u32).ok_or(k))
            .collect()
    };
    let num = |k: &'static str| c[k].as_u64().map(|n| n as usize).ok_or(k);
    // Fast-dLLM's Dream `confidence_threshold` is the top-probability confidence, thresholded.
    let sampler: SamplerKind = match c["sampler"].as_str().ok_or("sampler")? {
        "confidence_threshold" => SamplerKind::MaskgitPlus,
        other => other.parse().map_err(|_| "sampler")?,
    };
    let cache: CacheMode = c["cache"]
        .as_str()
        .unwrap_or("none")
        .parse()
        .map_err(|_| "cache")?;
    Ok(Case {
        cfg: GenerateConfig {
            steps: num("steps")?,
            gen_length: num("gen_length")?,
            block_length: num("block_length")?,
            sampler,
            sampling: TokenSampling {
                temperature: 0.0,
                top_p: c["top_p"].as_f64(),
                top_k: c["top_k"].as_u64().map(|k| k as usize),
            },
            alg_temp: None,
            eps: 1e-3,
            threshold: c["threshold"].as_f64(),
            factor: c["factor"].as_f64(),
            cache,
            eos: EosPolicy::Allow,
            seed: 0,
            sub_block: None,
        },
        prompt: ids("prompt_ids")?,
        expected: ids("output_ids")?,
        nfe: c["nfe"].as_u64().map(|n| n as usize),
    })
}

/// How a set of cases came out.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    pub compared: usize,
    /// Cases whose tokens, unfilled count and pass count all agree.
    pub identical: usize,
    /// One line per disagreement.
    pub failures: Vec<String>,
}

/// Run `cases` on `model`. `exact_nfe` compares forward passes too; otherwise the reference's
/// count is an upper bound (Dream's loop spends passes whose output it discards).
pub fn run(model: &DiffusionLm, cases: &[Case], exact_nfe: bool) -> Result<Outcome, GoldenError> {
    let mut out = Outcome::default();
    for c in cases {
        let canvas = Canvas::for_prompt(&c.prompt, c.cfg.gen_length, model.mask_id);
        let g = generate(model, canvas, &c.cfg, |_| {})?;
        let cfg = &c.cfg;
        let label = format!(
            "{} cache={} steps={} gen={} block={} threshold={:?} factor={:?}",
            cfg.sampler,
            cfg.cache,
            cfg.steps,
            cfg.gen_length,
            cfg.block_length,
            cfg.threshold,
            cfg.factor
        );
        let before = out.failures.len();
        if g.canvas.tokens[..c.prompt.len()] != c.prompt[..] {
            out.failures.push(format!("{label}: the prompt changed"));
        }
        if g.canvas.generated() != c.expected.as_slice() {
            out.failures.push(format!(
                "{label}: ours {:?} reference {:?}",
                g.canvas.generated(),
                c.expected
            ));
        }
        let unfilled = c.expected.iter().filter(|&&t| t == model.mask_id).count();
        if g.unfilled != unfilled {
            out.failures.push(format!(
                "{label}: {} unfilled, reference {unfilled}",
                g.unfilled
            ));
        }
        match c.nfe {
            Some(n) if exact_nfe && g.forward_passes != n => out.failures.push(format!(
                "{label}: {} forward passes, reference {n}",
                g.forward_passes
            )),
            Some(n) if g.forward_passes > n => out.failures.push(format!(
                "{label}: {} forward passes, more than the reference's {n}",
                g.forward_passes
            )),
            _ => {}
        }
        out.compared += 1;
        out.identical += usize::from(out.failures.len() == before);
    }
    Ok(out)
}

/// Our logits against the reference's on its input ids.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogitCheck {
    pub max_abs_diff: f32,
    /// `max_abs_diff` over the largest |reference logit|.
    pub rel_diff: f32,
    /// Positions whose arg-max differs from the reference's.
    pub argmax_mismatches: usize,
    pub positions: usize,
}

/// The tensors of a goldens safetensors file, on the CPU.
pub fn tensors(path: &Path) -> Result<HashMap<String, Tensor>, GoldenError> {
    candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| file_error(path, e))
}

/// `{family}.input_ids` through `model`, against `{family}.logits`.
pub fn logits(
    model: &DiffusionLm,
    goldens: &HashMap<String, Tensor>,
    family: &str,
    path: &Path,
) -> Result<LogitCheck, GoldenError> {
    let get = |key: String| {
        goldens.get(&key).ok_or_else(|| GoldenError::File {
            path: path.display().to_string(),
            why: format!("no tensor `{key}`"),
        })
    };
    let ids: Vec<u32> = get(format!("{family}.input_ids"))?
        .to_vec1::<i64>()?
        .into_iter()
        .map(|v| v as u32)
        .collect();
    let expected = get(format!("{family}.logits"))?.to_dtype(DType::F32)?;
    let ours = model
        .logits_all(&ids)?
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?;
    if ours.dims() != expected.dims() {
        return Err(file_error(
            path,
            format!(
                "{family}.logits is {:?}, the model gives {:?}",
                expected.dims(),
                ours.dims()
            ),
        ));
    }
    let max_abs_diff = (&ours - &expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
    let scale = expected.abs()?.max_all()?.to_scalar::<f32>()?.max(1e-12);
    let a = ours.argmax(1)?.to_vec1::<u32>()?;
    let b = expected.argmax(1)?.to_vec1::<u32>()?;
    Ok(LogitCheck {
        max_abs_diff,
        rel_diff: max_abs_diff / scale,
        argmax_mismatches: a.iter().zip(&b).filter(|(x, y)| x != y).count(),
        positions: a.len(),
    })
}

/// The fixture folder the goldens and tiny checkpoints live in, in a source checkout.
pub fn default_fixtures() -> PathBuf {
    PathBuf::from("tests/fixtures/diffusion")
}
