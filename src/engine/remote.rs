//! The generator on another machine: `--generator remote` sends each canvas to an
//! OpenAI-compatible server instead of denoising it here.
//!
//! Against `ouroboros serve` (it answers `GET /v1/ouroboros/checkpoint`) the client first
//! fetches the checkpoint's tokenizer and settings (never its weights) so that it plans the
//! same canvases an in-process run plans. Infilling then goes through `/v1/completions` with
//! `suffix`, instruct mode through `/v1/chat/completions`, both with every sampling setting
//! spelled out and `"details": true`, so the server answers with the canvas it denoised; the
//! client checks that canvas against its own and keeps it, which is what lets a repair re-mask
//! tokens and send them to `/v1/ouroboros/denoise`. A dry run is then byte for byte the
//! in-process one.
//!
//! Any other server (vLLM, SGLang's dLLM serving) gets the standard fields only. Its answers
//! are text: the client tokenizes them with the local checkpoint's tokenizer (`--model`, for
//! counting and locating errors), and a repair falls back to regenerating with the errors fed
//! back, which the run record says.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::diffusion::{Canvas, GenerateConfig, Generation};
use crate::http::{api_base, CallError, Failure, JsonClient};
use crate::models::Manifest;

/// Where the key is read from, as for the remote reasoner.
pub use crate::reasoner::remote::API_KEY_ENV;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorKind {
    /// The checkpoint loaded in this process.
    #[default]
    Local,
    /// An OpenAI-compatible server: `ouroboros serve`, or another engine.
    Remote,
}

impl std::str::FromStr for GeneratorKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(GeneratorKind::Local),
            "remote" => Ok(GeneratorKind::Remote),
            other => Err(format!("{other}: expected local or remote")),
        }
    }
}

/// The generator a run uses, as it asks for it and records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorSpec {
    pub kind: GeneratorKind,
    /// remote: the API base (`http://HOST:PORT/v1`).
    pub url: Option<String>,
    /// remote: the served model's name (default: the one the server lists).
    pub model: Option<String>,
    /// Seconds to wait for each answer.
    pub timeout: f64,
    /// Further attempts after a connection failure, timeout, 429 or 5xx.
    pub retries: usize,
}

impl Default for GeneratorSpec {
    fn default() -> Self {
        GeneratorSpec {
            kind: GeneratorKind::Local,
            url: None,
            model: None,
            timeout: 600.0,
            retries: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("--generator-timeout {0}: must be a positive number of seconds")]
    Timeout(f64),
    #[error("--generator-{0} is only for --generator remote")]
    NotRemote(&'static str),
    #[error("--generator remote needs --generator-url (the server's API base, such as http://127.0.0.1:8080/v1)")]
    NoUrl,
    #[error("--generator-url {0}: not an http:// or https:// URL")]
    BadUrl(String),
    #[error(transparent)]
    Offline(#[from] crate::offline::Refused),
    #[error("generator {url}: {detail}")]
    Call { url: String, detail: String },
    #[error("generator {url}: serves {served}, not --generator-model {asked}")]
    WrongModel {
        url: String,
        asked: String,
        served: String,
    },
    #[error("generator {url}: unexpected answer: {detail}")]
    BadAnswer { url: String, detail: String },
    #[error("generator {url}: the server denoised another canvas than the one this run planned (its tokenizer or context differs from the checkpoint it described)")]
    Canvas { url: String },
    #[error("generator {url}: {what} needs `ouroboros serve`; this server has only the standard OpenAI routes")]
    NoRoute { url: String, what: &'static str },
    #[error("writing the served checkpoint's files to {dir}")]
    Files {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

impl GeneratorSpec {
    /// Every setting checked, before anything connects; the API base for a remote one.
    pub fn check(&self) -> Result<Option<String>, RemoteError> {
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            return Err(RemoteError::Timeout(self.timeout));
        }
        match self.kind {
            GeneratorKind::Local if self.url.is_some() => Err(RemoteError::NotRemote("url")),
            GeneratorKind::Local if self.model.is_some() => Err(RemoteError::NotRemote("model")),
            GeneratorKind::Local => Ok(None),
            GeneratorKind::Remote => {
                let given = self.url.as_ref().ok_or(RemoteError::NoUrl)?;
                let base = api_base(given).ok_or_else(|| RemoteError::BadUrl(given.clone()))?;
                crate::offline::check(&format!("--generator remote ({base})"))?;
                Ok(Some(base))
            }
        }
    }
}

/// What `ouroboros serve` says about its checkpoint.
#[derive(Debug, Deserialize)]
pub struct ServedCheckpoint {
    pub model: String,
    pub weights_sha256: String,
    pub context: usize,
    pub parameters: usize,
    #[serde(default)]
    pub manifest: Option<Manifest>,
    pub files: std::collections::BTreeMap<String, String>,
}

/// A connected generator server.
pub struct RemoteGenerator {
    pub base: String,
    /// The name requests ask for.
    pub model: String,
    /// The weights hash the server reports (empty when it reports none).
    pub weights: String,
    /// `ouroboros serve`: canvases come back with answers, and repair can denoise.
    pub native: bool,
    /// The server's context, when it says (vLLM and SGLang list `max_model_len`).
    pub context: Option<usize>,
    http: JsonClient,
}

/// An answer: the canvas as denoised and its trace when the server gives them, else text.
pub enum Answer {
    Denoised(Generation),
    Text { text: String, seconds: f64 },
}

impl RemoteGenerator {
    /// Connect to `spec`'s server (checked with [`GeneratorSpec::check`]) and learn what it
    /// serves; an `ouroboros serve` also hands over its checkpoint description.
    pub fn connect(
        spec: &GeneratorSpec,
        key: Option<String>,
    ) -> Result<(RemoteGenerator, Option<ServedCheckpoint>), RemoteError> {
        let base = spec.check()?.ok_or(RemoteError::NoUrl)?;
        let http = JsonClient::new(key, Duration::from_secs_f64(spec.timeout), spec.retries);
        let mut remote = RemoteGenerator {
            base,
            model: String::new(),
            weights: String::new(),
            native: false,
            context: None,
            http,
        };
        let listed = remote.get("/models")?;
        let entries = listed
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let id = |e: &Value| e.get("id").and_then(Value::as_str).map(str::to_string);
        let entry = match &spec.model {
            Some(asked) => entries.iter().find(|e| id(e).as_deref() == Some(asked)),
            None => entries.first(),
        };
        let Some(entry) = entry else {
            let served: Vec<String> = entries.iter().filter_map(id).collect();
            return Err(RemoteError::WrongModel {
                url: remote.base.clone(),
                asked: spec.model.clone().unwrap_or_default(),
                served: format!("[{}]", served.join(", ")),
            });
        };
        remote.model = id(entry).unwrap_or_default();
        remote.weights = entry
            .get("weights_sha256")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        remote.context = ["context", "max_model_len"]
            .iter()
            .find_map(|k| entry.get(*k).and_then(Value::as_u64))
            .map(|n| n as usize);
        let path = "/ouroboros/checkpoint";
        let checkpoint = match remote.http.get(&remote.url(path)) {
            Ok(v) => Some(serde_json::from_value::<ServedCheckpoint>(v).map_err(|e| {
                RemoteError::BadAnswer {
                    url: remote.url(path),
                    detail: e.to_string(),
                }
            })?),
            // Another engine: it has no such route.
            Err(CallError {
                failure: Failure::Status(404 | 405, _),
                ..
            }) => None,
            Err(e) => return Err(remote.failed(path, e)),
        };
        if let Some(c) = &checkpoint {
            remote.native = true;
            remote.weights = c.weights_sha256.clone();
            remote.context = Some(c.context);
        }
        Ok((remote, checkpoint))
    }

    /// What a user should know before a run on this server, if anything.
    pub fn notice(&self) -> Option<String> {
        (!self.native).then(|| {
            format!(
                "{} is not `ouroboros serve`: only the standard OpenAI fields are sent (its own steps, sampler and cache apply), and failures are regenerated rather than repaired",
                self.base
            )
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn failed(&self, path: &str, e: CallError) -> RemoteError {
        let n = e.attempts;
        let detail = match e.failure {
            Failure::Unreachable(d) => format!(
                "cannot connect after {n} attempt(s): {d} (is the server running, and is --generator-url right?)"
            ),
            Failure::Unsendable(d) => format!("cannot send the request: {d}"),
            Failure::Timeout(t) => format!(
                "no answer within {} s, {n} attempt(s) (raise --generator-timeout for slow models)",
                t.as_secs_f64()
            ),
            Failure::NotJson(d) => format!("the answer is not JSON: {d}"),
            Failure::Status(s, m) => {
                let hint = match s {
                    401 | 403 if !self.http.has_key() => {
                        " (the server wants a key: set OUROBOROS_API_KEY)"
                    }
                    401 | 403 => " (check OUROBOROS_API_KEY)",
                    _ => "",
                };
                format!("HTTP {s}: {m}{hint}")
            }
        };
        RemoteError::Call {
            url: self.url(path),
            detail,
        }
    }

    fn get(&self, path: &str) -> Result<Value, RemoteError> {
        self.http
            .get(&self.url(path))
            .map_err(|e| self.failed(path, e))
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, RemoteError> {
        self.http
            .post(&self.url(path), body)
            .map_err(|e| self.failed(path, e))
    }

    /// The request fields for `cfg`: the standard ones for any server, and for `ouroboros
    /// serve` every setting, so it rebuilds exactly this configuration.
    fn settings(&self, cfg: &GenerateConfig) -> Value {
        let mut body = json!({
            "model": self.model,
            "max_tokens": cfg.gen_length,
            "temperature": cfg.sampling.temperature,
            "seed": cfg.seed,
            "stream": false,
        });
        if let Some(p) = cfg.sampling.top_p {
            body["top_p"] = json!(p);
        }
        if self.native {
            let extra = json!({
                "steps": cfg.steps,
                "block_length": cfg.block_length,
                "sampler": cfg.sampler.name(),
                "top_k": cfg.sampling.top_k,
                "alg_temp": cfg.alg_temp,
                "eps": cfg.eps,
                "threshold": cfg.threshold,
                "factor": cfg.factor,
                "cache": cfg.cache.name(),
                "eos": cfg.eos.to_string(),
                "sub_block": cfg.sub_block,
                "details": true,
            });
            if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
                b.extend(
                    e.iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
        }
        body
    }

    /// Fill `planned`'s span between `prompt` and `suffix` through `/v1/completions`.
    pub fn infill(
        &self,
        prompt: &str,
        suffix: &str,
        planned: &Canvas,
        cfg: &GenerateConfig,
    ) -> Result<Answer, RemoteError> {
        let mut body = self.settings(cfg);
        body["prompt"] = json!(prompt);
        body["suffix"] = json!(suffix);
        let started = Instant::now();
        let reply = self.post("/completions", &body)?;
        self.answer("/completions", &reply, "/choices/0/text", planned, started)
    }

    /// Answer a chat turn (`user`) through `/v1/chat/completions`.
    pub fn chat(
        &self,
        user: &str,
        planned: &Canvas,
        cfg: &GenerateConfig,
    ) -> Result<Answer, RemoteError> {
        let mut body = self.settings(cfg);
        body["messages"] = json!([{"role": "user", "content": user}]);
        let started = Instant::now();
        let reply = self.post("/chat/completions", &body)?;
        self.answer(
            "/chat/completions",
            &reply,
            "/choices/0/message/content",
            planned,
            started,
        )
    }

    /// Denoise the masked positions of `canvas` inside its span (`ouroboros serve` only).
    pub fn denoise(
        &self,
        canvas: &Canvas,
        mask: u32,
        cfg: &GenerateConfig,
    ) -> Result<Generation, RemoteError> {
        let positions: Vec<usize> = canvas
            .span
            .clone()
            .filter(|&p| canvas.tokens[p] == mask)
            .collect();
        let mut body = self.settings(cfg);
        if let Some(b) = body.as_object_mut() {
            b.remove("max_tokens");
            b.remove("stream");
        }
        body["tokens"] = json!(canvas.tokens);
        body["positions"] = json!(positions);
        body["span"] = json!([canvas.span.start, canvas.span.end]);
        let reply = self.post("/ouroboros/denoise", &body)?;
        match self.trace("/ouroboros/denoise", &reply, canvas, Some(&positions))? {
            Some(g) => Ok(g),
            None => Err(RemoteError::BadAnswer {
                url: self.url("/ouroboros/denoise"),
                detail: "no ouroboros.canvas in the answer".into(),
            }),
        }
    }

    /// [`crate::compressor::masked_loss`] on the server (`/v1/ouroboros/loss`).
    pub fn loss(
        &self,
        canvas: &[u32],
        positions: &[usize],
        targets: &[u32],
    ) -> Result<f64, RemoteError> {
        let path = "/ouroboros/loss";
        if !self.native {
            return Err(RemoteError::NoRoute {
                url: self.base.clone(),
                what: "--scorer model (ranking context by the model's loss); use --scorer graph or signatures",
            });
        }
        let body = json!({"model": self.model, "tokens": canvas, "positions": positions, "targets": targets});
        let reply = self.post(path, &body)?;
        reply
            .get("loss")
            .and_then(Value::as_f64)
            .ok_or_else(|| RemoteError::BadAnswer {
                url: self.url(path),
                detail: "no number at loss".into(),
            })
    }

    /// Denoise whole canvases (`ouroboros serve` only), all sent at once so the server
    /// batches them as it batches concurrent clients; answers in order.
    pub fn denoise_many(
        &self,
        jobs: &[(Canvas, GenerateConfig)],
        mask: u32,
    ) -> Result<Vec<Generation>, RemoteError> {
        if !self.native {
            return Err(RemoteError::NoRoute {
                url: self.base.clone(),
                what: "denoising whole canvases (bench)",
            });
        }
        std::thread::scope(|s| {
            let calls: Vec<_> = jobs
                .iter()
                .map(|(canvas, cfg)| s.spawn(move || self.denoise(canvas, mask, cfg)))
                .collect();
            calls
                .into_iter()
                .map(|c| c.join().expect("a denoise call does not panic"))
                .collect()
        })
    }

    fn answer(
        &self,
        path: &str,
        reply: &Value,
        text_at: &str,
        planned: &Canvas,
        started: Instant,
    ) -> Result<Answer, RemoteError> {
        if let Some(g) = self.trace(path, reply, planned, None)? {
            return Ok(Answer::Denoised(g));
        }
        let text = reply
            .pointer(text_at)
            .and_then(Value::as_str)
            .ok_or_else(|| RemoteError::BadAnswer {
                url: self.url(path),
                detail: format!("no text at {text_at}"),
            })?;
        Ok(Answer::Text {
            text: text.to_string(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The generation in an answer's `ouroboros` object, checked against the canvas it was
    /// asked for: every token outside the masked positions as planned.
    fn trace(
        &self,
        path: &str,
        reply: &Value,
        planned: &Canvas,
        masked: Option<&[usize]>,
    ) -> Result<Option<Generation>, RemoteError> {
        let Some(ext) = reply.get("ouroboros").filter(|e| e.get("canvas").is_some()) else {
            return Ok(None);
        };
        let bad = |detail: String| RemoteError::BadAnswer {
            url: self.url(path),
            detail,
        };
        let wire: Trace = serde_json::from_value(ext.clone()).map_err(|e| bad(e.to_string()))?;
        let [start, end] = wire.canvas.span;
        let canvas = Canvas {
            tokens: wire.canvas.tokens,
            span: start..end,
        };
        let fixed = |p: usize| match masked {
            Some(m) => !m.contains(&p),
            None => !planned.span.contains(&p),
        };
        let same = canvas.span == planned.span
            && canvas.tokens.len() == planned.tokens.len()
            && (0..canvas.tokens.len())
                .filter(|&p| fixed(p))
                .all(|p| canvas.tokens[p] == planned.tokens[p]);
        if !same {
            return Err(RemoteError::Canvas {
                url: self.url(path),
            });
        }
        let g = wire.generation;
        Ok(Some(Generation {
            canvas,
            forward_passes: g.forward_passes,
            step_ms: g.step_ms,
            schedule: g.schedule,
            confidence: g.confidence,
            kv_bytes: g.kv_bytes,
            unfilled: g.unfilled,
            seconds: g.seconds,
        }))
    }
}

#[derive(Deserialize)]
struct Trace {
    canvas: WireCanvas,
    generation: WireGeneration,
}

#[derive(Deserialize)]
struct WireCanvas {
    tokens: Vec<u32>,
    span: [usize; 2],
}

#[derive(Deserialize)]
struct WireGeneration {
    forward_passes: usize,
    step_ms: Vec<f64>,
    schedule: Vec<u32>,
    confidence: Vec<f64>,
    kv_bytes: usize,
    unfilled: usize,
    seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_checked_before_connecting() {
        let remote = |url: Option<&str>| GeneratorSpec {
            kind: GeneratorKind::Remote,
            url: url.map(str::to_string),
            ..GeneratorSpec::default()
        };
        assert!(matches!(remote(None).check(), Err(RemoteError::NoUrl)));
        assert!(matches!(
            remote(Some("localhost:8080")).check(),
            Err(RemoteError::BadUrl(_))
        ));
        assert_eq!(
            remote(Some("http://h:1/v1/completions")).check().unwrap(),
            Some("http://h:1/v1".to_string())
        );
        let local = GeneratorSpec {
            url: Some("http://h:1/v1".into()),
            ..GeneratorSpec::default()
        };
        assert!(matches!(local.check(), Err(RemoteError::NotRemote("url"))));
        let slow = GeneratorSpec {
            timeout: 0.0,
            ..GeneratorSpec::default()
        };
        assert!(matches!(slow.check(), Err(RemoteError::Timeout(_))));
    }
}
