//! A diffusion checkpoint (any family `generate` runs) behind `/v1/completions` (with OpenAI's
//! `suffix` for infilling), `/v1/chat/completions` (the checkpoint's chat template) and the
//! native `/v1/ouroboros/denoise` (a canvas with given positions re-masked and denoised again,
//! which diffusion-native repair needs). Requests that wait together are denoised in one batch
//! ([`crate::diffusion::generate_batch`]); each answer is the one the request gets alone, and a
//! greedy completion is the text `generate --json` prints for the same settings.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::chat::{content_text, max_tokens};
use super::fields::{
    below, details, optional_count, sampling, stops, unknown_fields, CHAT_FIELDS,
    COMPLETION_FIELDS, DENOISE_FIELDS, EXTENSION_FIELDS, LOSS_FIELDS, MAX_TOKENS,
};
use super::{bad_request, internal, ApiError, Backend, Route};
use crate::diffusion::{generate_batch, Canvas, GenerateConfig, GenerateError, Generation};
use crate::engine::Engine;

pub struct DiffusionBackend {
    engine: Engine,
    name: String,
    weights: String,
    served: u64,
    /// `None`: only the standard OpenAI routes and fields (`--openai-only`).
    checkpoint: Option<Value>,
}

/// The checkpoint files a client needs to build the canvases this server builds: the
/// tokenizer, the chat template and the settings `generate` reads. Never the weights.
pub const CHECKPOINT_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
];

impl DiffusionBackend {
    pub fn new(
        engine: Engine,
        name: String,
        weights_sha256: String,
    ) -> std::io::Result<DiffusionBackend> {
        let mut files = serde_json::Map::new();
        for f in CHECKPOINT_FILES {
            let path = engine.model.dir.join(f);
            if path.is_file() {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                })?;
                files.insert(f.to_string(), Value::String(text));
            }
        }
        let checkpoint = json!({
            "object": "ouroboros.checkpoint",
            "model": name,
            "weights_sha256": weights_sha256,
            "family": engine.model.family.name(),
            "context": engine.model.max_positions(),
            "parameters": engine.model.params,
            "manifest": engine.manifest,
            "files": files,
        });
        Ok(DiffusionBackend {
            engine,
            name,
            weights: weights_sha256,
            served: 0,
            checkpoint: Some(checkpoint),
        })
    }

    /// Only the standard routes and fields, as another OpenAI-compatible engine has.
    pub fn openai_only(self) -> DiffusionBackend {
        DiffusionBackend {
            checkpoint: None,
            ..self
        }
    }

    fn native(&self) -> bool {
        self.checkpoint.is_some()
    }
}

/// One request, checked and ready for the engine.
struct Prepared {
    route: Route,
    canvas: Canvas,
    cfg: GenerateConfig,
    prompt_tokens: usize,
    stop: Vec<String>,
    /// Infilling: the span ends at its first end marker.
    infill: bool,
    /// Answer with the canvas and the generation's trace too (`"details": true`).
    details: bool,
}

/// What `"details": true` adds to an answer: the denoised canvas (the fixed text around the
/// span shows which canvas the server built) and the generation's trace, so a client can
/// record it and repair the span later through `/v1/ouroboros/denoise`.
fn trace(out: &Generation) -> Value {
    json!({
        "canvas": {
            "tokens": out.canvas.tokens,
            "span": [out.canvas.span.start, out.canvas.span.end],
        },
        "generation": {
            "forward_passes": out.forward_passes,
            "step_ms": out.step_ms,
            "schedule": out.schedule,
            "confidence": out.confidence,
            "kv_bytes": out.kv_bytes,
            "unfilled": out.unfilled,
            "seconds": out.seconds,
        },
    })
}

impl DiffusionBackend {
    fn prepare(&self, route: Route, req: &Value) -> Result<Prepared, ApiError> {
        if req.get("stream").and_then(Value::as_bool) == Some(true) {
            return Err(bad_request("\"stream\": true is not supported"));
        }
        if req.get("n").is_some_and(|n| n.as_u64() != Some(1)) {
            return Err(bad_request("n: only 1 is supported"));
        }
        if !self.native() {
            let extension = req
                .as_object()
                .and_then(|o| o.keys().find(|k| EXTENSION_FIELDS.contains(&k.as_str())));
            if let Some(k) = extension {
                return Err(bad_request(format!(
                    "unknown field {k:?} (this server takes the standard OpenAI fields only)"
                )));
            }
        }
        let model = &self.engine.model;
        let codec = &model.codec;
        let encode = |text: &str| {
            codec
                .encode(text)
                .map_err(|e| bad_request(format!("tokenizing: {e}")))
        };
        let (prompt, suffix) = match route {
            Route::Completions => {
                unknown_fields(req, COMPLETION_FIELDS)?;
                let prompt = req
                    .get("prompt")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad_request("\"prompt\" must be a string"))?;
                let suffix = match req.get("suffix") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(v) => return Err(bad_request(format!("suffix {v}: must be a string"))),
                };
                (prompt.to_string(), suffix)
            }
            Route::ChatCompletions => {
                unknown_fields(req, CHAT_FIELDS)?;
                (self.chat_prompt(req)?, None)
            }
            Route::Denoise => return self.prepare_denoise(req),
            Route::Loss => return Err(bad_request("a loss is not a generation")),
        };
        let gen = match req.get("max_tokens").or(req.get("max_completion_tokens")) {
            Some(_) => Some(max_tokens(req, 0, MAX_TOKENS)?),
            None => None,
        };
        let block = optional_count(req, "block_length")?;
        let cfg = self
            .engine
            .config(&sampling(req)?, gen, block)
            .map_err(|e| bad_request(e.to_string()))?;
        let before = encode(&prompt)?;
        let canvas = match &suffix {
            Some(s) => {
                let after = encode(s)?;
                let room = model.max_positions().saturating_sub(cfg.gen_length);
                let (nb, na) = crate::builder::fit_window(before.len(), after.len(), room);
                Canvas::for_infill(
                    &before[before.len() - nb..],
                    cfg.gen_length,
                    &after[..na],
                    model.mask_id,
                )
            }
            // A prompt too long for the window loses its beginning, as in-process runs cut it.
            None => {
                let keep = before
                    .len()
                    .min(model.max_positions().saturating_sub(cfg.gen_length));
                Canvas::for_prompt(
                    &before[before.len() - keep..],
                    cfg.gen_length,
                    model.mask_id,
                )
            }
        };
        Ok(Prepared {
            route,
            prompt_tokens: canvas.tokens.len() - canvas.span.len(),
            canvas,
            cfg,
            stop: stops(req)?,
            infill: suffix.is_some(),
            details: details(req)?,
        })
    }

    fn chat_prompt(&self, req: &Value) -> Result<String, ApiError> {
        let template = self
            .engine
            .template()
            .map_err(|e| bad_request(e.to_string()))?;
        let turns = req
            .get("messages")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| bad_request("\"messages\" must be a non-empty list"))?;
        let mut messages = Vec::with_capacity(turns.len());
        for (i, m) in turns.iter().enumerate() {
            let role = m.get("role").and_then(Value::as_str);
            let content = m.get("content").and_then(content_text);
            match (role, content) {
                (Some(r), Some(c)) => messages.push((r.to_string(), c)),
                _ => {
                    return Err(bad_request(format!(
                        "messages[{i}] needs a \"role\" and a text \"content\""
                    )))
                }
            }
        }
        let refs: Vec<(&str, &str)> = messages
            .iter()
            .map(|(r, c)| (r.as_str(), c.as_str()))
            .collect();
        template
            .render_messages(&refs)
            .map_err(|e| bad_request(format!("rendering the chat template: {e}")))
    }

    /// `tokens` (the canvas) with `positions` masked again, denoised as one block.
    fn prepare_denoise(&self, req: &Value) -> Result<Prepared, ApiError> {
        unknown_fields(req, DENOISE_FIELDS)?;
        let model = &self.engine.model;
        let mut tokens: Vec<u32> = below(req, "tokens", model.vocab_rows)?
            .into_iter()
            .map(|t| t as u32)
            .collect();
        if tokens.is_empty() || tokens.len() > model.max_positions() {
            return Err(bad_request(format!(
                "tokens: from 1 to {} of them (the model's context)",
                model.max_positions()
            )));
        }
        let mut positions = below(req, "positions", tokens.len())?;
        positions.sort_unstable();
        positions.dedup();
        let (Some(&first), Some(&last)) = (positions.first(), positions.last()) else {
            return Err(bad_request("positions: at least one position to denoise"));
        };
        for &p in &positions {
            tokens[p] = model.mask_id;
        }
        let span = match req.get("span") {
            None | Some(Value::Null) => first..last + 1,
            Some(v) => match v.as_array().map(|a| a.iter().map(Value::as_u64).collect::<Vec<_>>()) {
                Some(ends) if ends.len() == 2 => match (ends[0], ends[1]) {
                    (Some(a), Some(b))
                        if a as usize <= first && last < b as usize && b as usize <= tokens.len() =>
                    {
                        a as usize..b as usize
                    }
                    _ => {
                        return Err(bad_request(format!(
                            "span {v}: [start, end) must hold every position and end within the {} tokens",
                            tokens.len()
                        )))
                    }
                },
                _ => return Err(bad_request(format!("span {v}: must be [start, end]"))),
            },
        };
        let mut sampling = sampling(req)?;
        sampling.steps = Some(sampling.steps.unwrap_or(positions.len()).min(span.len()));
        let block = optional_count(req, "block_length")?.unwrap_or(span.len());
        let cfg = self
            .engine
            .config(&sampling, Some(span.len()), Some(block))
            .map_err(|e| bad_request(e.to_string()))?;
        Ok(Prepared {
            route: Route::Denoise,
            prompt_tokens: tokens.len() - positions.len(),
            canvas: Canvas { tokens, span },
            cfg,
            stop: Vec::new(),
            infill: true,
            details: details(req)?,
        })
    }

    fn answer(&mut self, p: &Prepared, out: crate::diffusion::Generation) -> Value {
        self.served += 1;
        let model = &self.engine.model;
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let extension = json!({
            "steps": out.step_ms.len(),
            "forward_passes": out.forward_passes,
            "tok_per_s": out.tokens_per_second(),
            "cache": p.cfg.cache.name(),
            "sampler": p.cfg.sampler.name(),
            "block_length": p.cfg.block_length,
            "weights_sha256": self.weights,
        });
        let mut extension = extension;
        if p.details {
            if let (Some(e), Some(t)) = (extension.as_object_mut(), trace(&out).as_object()) {
                e.extend(t.clone());
            }
        }
        if p.route == Route::Denoise {
            let positions: Vec<usize> = p
                .canvas
                .span
                .clone()
                .filter(|&i| p.canvas.tokens[i] == model.mask_id)
                .collect();
            let denoised: Vec<u32> = positions.iter().map(|&i| out.canvas.tokens[i]).collect();
            return json!({
                "object": "ouroboros.denoise",
                "model": self.name,
                "tokens": out.canvas.tokens,
                "positions": positions,
                "denoised": denoised,
                "ouroboros": extension,
            });
        }
        let mut generated = out.canvas.generated().to_vec();
        if p.infill {
            let ends = crate::builder::Builder::new(model).end_ids().to_vec();
            if let Some(cut) = generated.iter().position(|t| ends.contains(t)) {
                generated.truncate(cut);
            }
        }
        let mut text = model.codec.decode(&generated, false);
        let mut finish = "length";
        if let Some(at) = p.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            text.truncate(at);
            finish = "stop";
        }
        let usage = json!({
            "prompt_tokens": p.prompt_tokens,
            "completion_tokens": generated.len(),
            "total_tokens": p.prompt_tokens + generated.len(),
        });
        match p.route {
            Route::ChatCompletions => json!({
                "id": format!("chatcmpl-{}", self.served),
                "object": "chat.completion",
                "created": created,
                "model": self.name,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }],
                "usage": usage,
                "ouroboros": extension,
            }),
            _ => json!({
                "id": format!("cmpl-{}", self.served),
                "object": "text_completion",
                "created": created,
                "model": self.name,
                "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": null}],
                "usage": usage,
                "ouroboros": extension,
            }),
        }
    }
}

impl DiffusionBackend {
    /// `/v1/ouroboros/loss`: the mean cross-entropy of `targets` at `positions` of `tokens`
    /// (masked there), as the context scorer computes it in-process.
    fn loss(&mut self, req: &Value) -> Result<Value, ApiError> {
        unknown_fields(req, LOSS_FIELDS)?;
        let model = &self.engine.model;
        let tokens: Vec<u32> = below(req, "tokens", model.vocab_rows)?
            .into_iter()
            .map(|t| t as u32)
            .collect();
        if tokens.is_empty() || tokens.len() > model.max_positions() {
            return Err(bad_request(format!(
                "tokens: from 1 to {} of them (the model's context)",
                model.max_positions()
            )));
        }
        let positions = below(req, "positions", tokens.len())?;
        let targets: Vec<u32> = below(req, "targets", model.vocab_rows)?
            .into_iter()
            .map(|t| t as u32)
            .collect();
        if positions.is_empty() || positions.len() != targets.len() {
            return Err(bad_request(
                "positions and targets: as many of each, at least one",
            ));
        }
        let loss = crate::compressor::masked_loss(model, &tokens, &positions, &targets)
            .map_err(|e| internal("computing a loss", &e))?;
        self.served += 1;
        Ok(json!({"object": "ouroboros.loss", "model": self.name, "loss": loss}))
    }
}

fn generation_error(e: GenerateError) -> ApiError {
    match e {
        GenerateError::Model(m) => internal("while generating", &m),
        other => bad_request(other.to_string()),
    }
}

impl Backend for DiffusionBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn routes(&self) -> &'static [Route] {
        match self.native() {
            true => &[
                Route::Completions,
                Route::ChatCompletions,
                Route::Denoise,
                Route::Loss,
            ],
            false => &[Route::Completions, Route::ChatCompletions],
        }
    }

    fn describe(&self) -> Value {
        let m = &self.engine.model;
        json!({
            "family": m.family.name(),
            "parameters": m.params,
            "context": m.max_positions(),
            "block_causal": m.block_causal,
            "weights_sha256": self.weights,
        })
    }

    fn checkpoint(&self) -> Option<Value> {
        self.checkpoint.clone()
    }

    fn handle(&mut self, route: Route, request: &Value) -> Result<Value, ApiError> {
        self.handle_many(&[(route, request)])
            .pop()
            .expect("one answer per request")
    }

    /// Every request checked, then the valid ones denoised in one batch (losses, one pass
    /// each, are answered alone).
    fn handle_many(&mut self, jobs: &[(Route, &Value)]) -> Vec<Result<Value, ApiError>> {
        if jobs.iter().any(|(r, _)| *r == Route::Loss) {
            return jobs
                .iter()
                .map(|(r, v)| match r {
                    Route::Loss => self.loss(v),
                    _ => self.handle_many(&[(*r, v)]).remove(0),
                })
                .collect();
        }
        let prepared: Vec<Result<Prepared, ApiError>> =
            jobs.iter().map(|(r, v)| self.prepare(*r, v)).collect();
        let ready: Vec<&Prepared> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
        let batch: Vec<(Canvas, GenerateConfig)> = ready
            .iter()
            .map(|p| (p.canvas.clone(), p.cfg.clone()))
            .collect();
        let outs = match batch.is_empty() {
            true => Ok(Vec::new()),
            false => generate_batch(&self.engine.model, batch, |_, _| {}),
        };
        let mut outs = match outs {
            Ok(o) => o.into_iter().map(Ok).collect::<Vec<_>>(),
            // One request's settings can fail the whole batch's check: answer each alone.
            Err(_) if ready.len() > 1 => ready
                .iter()
                .map(|p| {
                    generate_batch(
                        &self.engine.model,
                        vec![(p.canvas.clone(), p.cfg.clone())],
                        |_, _| {},
                    )
                    .map(|mut o| o.remove(0))
                    .map_err(generation_error)
                })
                .collect(),
            Err(e) => vec![Err(generation_error(e))],
        }
        .into_iter();
        prepared
            .into_iter()
            .map(|p| {
                let p = p?;
                let out = outs.next().expect("an output per prepared request")?;
                Ok(self.answer(&p, out))
            })
            .collect()
    }
}
