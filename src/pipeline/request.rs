//! What a run is asked to do, as typed values with no command-line parsing in them. The
//! command line builds a [`Request`] and [`RunOptions`] once; the pipeline runs them; the run
//! record stores them (as a [`Recorded`]), and `replay` reads them back. A flag can be renamed
//! without breaking old records, and records written before this shape existed (the command's
//! own argument struct, "v1") are still read.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::behaviour::TestOptions;
use crate::compressor::Strategy;
use crate::engine::{Mode, ModelChoice, SamplingOptions};
use crate::gate::PythonTarget;
use crate::reasoner::spec::{ReasonerKind, ReasonerSpec};

/// What to change: the task in words, the files (repository-relative, `/`-separated), and
/// optionally only some of their functions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub task: String,
    pub targets: Vec<String>,
    #[serde(default)]
    pub functions: Vec<String>,
}

/// How each unit is written and healed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildOptions {
    /// `None`: instruct when the checkpoint has a chat template, else infill.
    pub mode: Option<Mode>,
    /// A fixed span for every unit instead of one sized from its body.
    pub gen_length: Option<usize>,
    /// Semi-autoregressive blocks of this many tokens (the span is rounded up to a multiple).
    pub block_length: Option<usize>,
    pub sampling: SamplingOptions,
    /// Self-healing attempts per unit after the first generation.
    pub max_retries: u32,
    /// Splice only units that pass the gate; off, every unit is spliced and the gate recorded.
    pub safe_mode: bool,
    /// Units in different files whose first drafts are denoised together (`None`: the device's
    /// default). Outputs are the same for every value.
    #[serde(default)]
    pub batch: Option<usize>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            mode: None,
            gen_length: None,
            block_length: None,
            sampling: SamplingOptions::default(),
            max_retries: 3,
            safe_mode: true,
            batch: None,
        }
    }
}

/// How each unit's context is ranked and cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompressOptions {
    pub scorer: Strategy,
    /// The causal LM checkpoint for `Strategy::Causal`.
    pub scorer_model: Option<PathBuf>,
    /// Tokens of context per unit (default: the window less twice the unit).
    pub budget: Option<usize>,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            scorer: Strategy::Model,
            scorer_model: None,
            budget: None,
        }
    }
}

/// What may reach disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyOptions {
    /// Files over this risk need review.
    pub max_risk: f64,
    /// Write the files at or below `max_risk`.
    pub auto_apply: bool,
    /// Write nothing but the run record.
    pub dry_run: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            max_risk: 0.3,
            auto_apply: false,
            dry_run: false,
        }
    }
}

/// Everything about a run besides the request itself.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunOptions {
    pub model: ModelChoice,
    /// Where the model runs: here, or on a generator server.
    #[serde(default)]
    pub generator: crate::engine::remote::GeneratorSpec,
    pub build: BuildOptions,
    pub compress: CompressOptions,
    pub apply: ApplyOptions,
    #[serde(default)]
    pub reasoner: ReasonerSpec,
    /// The Python grammar the gate enforces.
    #[serde(default)]
    pub python: PythonTarget,
    /// The behaviour gate: which tests, how long.
    #[serde(default)]
    pub tests: TestOptions,
}

/// The record's `refactor.request`: the request, its options, and the weights they ran with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// 2 for this shape; records without it are v1.
    pub version: u32,
    pub request: Request,
    pub options: RunOptions,
    pub weights_sha256: String,
}

pub const RECORD_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
#[error("unreadable request (neither the v2 shape nor the v1 one)")]
pub struct UnreadableRequest(#[source] serde_json::Error);

impl Recorded {
    /// Read a record's request in either shape.
    pub fn from_value(value: &serde_json::Value) -> Result<Recorded, UnreadableRequest> {
        if value.get("version").is_some() {
            return serde_json::from_value(value.clone()).map_err(UnreadableRequest);
        }
        serde_json::from_value::<v1::Args>(value.clone())
            .map(v1::Args::upgrade)
            .map_err(UnreadableRequest)
    }
}

/// The request as `refactor`'s argument struct serialised it, before [`Recorded`].
mod v1 {
    use serde::Deserialize;

    use super::*;
    use crate::device::{DeviceSpec, Precision};
    use crate::diffusion::{EosPolicy, SamplerKind};
    use crate::engine::Preset;

    #[derive(Deserialize)]
    pub struct Args {
        task: String,
        targets: Vec<String>,
        #[serde(default)]
        functions: Vec<String>,
        mode: Option<Mode>,
        gen_length: Option<usize>,
        block_length: Option<usize>,
        model: Model,
        sampling: Sampling,
        #[serde(default)]
        no_safe_mode: bool,
        max_retries: u32,
        max_risk: f64,
        #[serde(default)]
        auto_apply: bool,
        #[serde(default)]
        dry_run: bool,
        scorer: Strategy,
        #[serde(default)]
        scorer_model: Option<PathBuf>,
        #[serde(default)]
        budget: Option<usize>,
        #[serde(default)]
        reasoner: Option<Reasoner>,
        #[serde(default)]
        weights_sha256: String,
    }

    #[derive(Deserialize)]
    struct Model {
        model: Option<String>,
        device: DeviceSpec,
        dtype: Precision,
    }

    #[derive(Deserialize)]
    struct Sampling {
        steps: Option<usize>,
        preset: Option<Preset>,
        sampler: Option<SamplerKind>,
        temperature: Option<f64>,
        top_p: Option<f64>,
        top_k: Option<usize>,
        alg_temp: Option<f64>,
        eps: f64,
        threshold: Option<f64>,
        eos: EosPolicy,
        seed: u64,
    }

    #[derive(Deserialize)]
    struct Reasoner {
        reasoner: ReasonerKind,
        reasoner_model: Option<String>,
        reasoner_url: Option<String>,
        reasoner_timeout: f64,
        reasoner_retries: usize,
        reasoner_max_tokens: usize,
    }

    impl Args {
        pub fn upgrade(self) -> Recorded {
            let s = self.sampling;
            Recorded {
                version: 1,
                request: Request {
                    task: self.task,
                    targets: self.targets,
                    functions: self.functions,
                },
                options: RunOptions {
                    model: ModelChoice {
                        model: self.model.model,
                        device: self.model.device,
                        dtype: self.model.dtype,
                    },
                    generator: Default::default(),
                    build: BuildOptions {
                        mode: self.mode,
                        gen_length: self.gen_length,
                        block_length: self.block_length,
                        sampling: SamplingOptions {
                            steps: s.steps,
                            preset: s.preset,
                            sampler: s.sampler,
                            temperature: s.temperature,
                            top_p: s.top_p,
                            top_k: s.top_k,
                            alg_temp: s.alg_temp,
                            eps: s.eps,
                            threshold: s.threshold,
                            factor: None,
                            cache: crate::diffusion::CacheMode::None,
                            eos: s.eos,
                            seed: s.seed,
                            sub_block: None,
                        },
                        max_retries: self.max_retries,
                        safe_mode: !self.no_safe_mode,
                        batch: None,
                    },
                    compress: CompressOptions {
                        scorer: self.scorer,
                        scorer_model: self.scorer_model,
                        budget: self.budget,
                    },
                    apply: ApplyOptions {
                        max_risk: self.max_risk,
                        auto_apply: self.auto_apply,
                        dry_run: self.dry_run,
                    },
                    reasoner: self
                        .reasoner
                        .map(|r| ReasonerSpec {
                            kind: r.reasoner,
                            model: r.reasoner_model,
                            url: r.reasoner_url,
                            timeout: r.reasoner_timeout,
                            retries: r.reasoner_retries,
                            max_tokens: r.reasoner_max_tokens,
                        })
                        .unwrap_or_default(),
                    // v1 records did not store it; replay used the default then too.
                    python: PythonTarget::default(),
                    // v1 runs had no test gate.
                    tests: TestOptions {
                        enabled: false,
                        ..TestOptions::default()
                    },
                },
                weights_sha256: self.weights_sha256,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Preset;

    #[test]
    fn v1_requests_are_upgraded_field_by_field() {
        let v1 = serde_json::json!({
            "auto_apply": false, "block_length": 16, "budget": null, "dry_run": true,
            "functions": ["restock"], "gen_length": null, "max_retries": 1, "max_risk": 0.3,
            "mode": null, "model": {"device": "cpu", "dtype": "f32", "model": null},
            "no_safe_mode": false,
            "reasoner": {"reasoner": "local", "reasoner_max_tokens": 512, "reasoner_model": null,
                         "reasoner_retries": 2, "reasoner_timeout": 120.0, "reasoner_url": null},
            "safe_mode": false,
            "sampling": {"alg_temp": null, "eos": "allow", "eps": 0.001, "preset": "fast",
                         "sampler": null, "seed": 3, "steps": null, "temperature": null,
                         "threshold": null, "top_k": null, "top_p": null},
            "scorer": "graph", "scorer_model": null, "targets": ["inventory/store.py"],
            "task": "Make restock validate its input", "weights_sha256": "sha256:abc"
        });
        let r = Recorded::from_value(&v1).unwrap();
        assert_eq!(r.version, 1);
        assert_eq!(r.request.functions, ["restock"]);
        assert_eq!(r.options.build.block_length, Some(16));
        assert_eq!(r.options.build.sampling.preset, Some(Preset::Fast));
        assert_eq!(r.options.build.sampling.seed, 3);
        assert!(r.options.build.safe_mode);
        assert_eq!(r.options.compress.scorer, Strategy::Graph);
        assert!(r.options.apply.dry_run);
        assert_eq!(r.weights_sha256, "sha256:abc");
    }

    #[test]
    fn v2_requests_round_trip() {
        let r = Recorded {
            version: RECORD_VERSION,
            request: Request {
                task: "t".into(),
                targets: vec!["a.py".into()],
                functions: vec![],
            },
            options: RunOptions::default(),
            weights_sha256: "sha256:0".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(Recorded::from_value(&v).unwrap(), r);
        let e = Recorded::from_value(&serde_json::json!({"task": 1})).unwrap_err();
        assert!(e.to_string().contains("unreadable request"));
    }
}
