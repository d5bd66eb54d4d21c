//! An autoregressive chat model run in-process through candle-transformers' llama and qwen2
//! families: the reasoner's local model (for example SmolLM2-135M-Instruct, Q4_1) and what
//! `ouroboros serve` answers with. Two layouts:
//! - one GGUF file (the quantized loaders): weights, the byte-level BPE vocabulary and merges
//!   (`tokenizer.ggml.*`) and the Jinja chat template (`tokenizer.chat_template`) all come from
//!   the file; a `tokenizer.json` beside it takes precedence, for tokenizers GGUF cannot
//!   describe (SentencePiece);
//! - a Hugging Face directory (config.json, safetensors, tokenizer.json, and the chat template
//!   in tokenizer_config.json).
//!
//! Templates are rendered with minijinja.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::{llama, quantized_llama, quantized_qwen2, qwen2};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use super::chat::{ChatError, ChatModel, ChatReply, ChatRequest, Message, ModelInfo};
use super::constrain::{byte_level_bytes, State};
use crate::checkpoint::ChatTemplate;

enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    HfQwen2(qwen2::ModelForCausalLM),
    /// candle's HF llama keeps its KV cache outside the model; a fresh one starts a request.
    HfLlama {
        model: llama::Llama,
        cache: llama::Cache,
        config: llama::Config,
        device: Device,
    },
}

impl Weights {
    /// The last position's logits, as a vector over the vocabulary.
    fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(m) => m.forward(x, pos),
            Weights::Qwen2(m) => m.forward(x, pos),
            Weights::HfQwen2(m) => m.forward(x, pos),
            Weights::HfLlama { model, cache, .. } => model.forward(x, pos, cache),
        }?
        .flatten_all()
    }
    fn clear(&mut self) -> candle_core::Result<()> {
        match self {
            Weights::Llama(m) => m.clear_kv_cache(),
            Weights::Qwen2(m) => m.clear_kv_cache(),
            Weights::HfQwen2(m) => m.clear_kv_cache(),
            Weights::HfLlama {
                cache,
                config,
                device,
                ..
            } => *cache = llama::Cache::new(true, candle_core::DType::F32, config, device)?,
        }
        Ok(())
    }
}

pub struct LocalChat {
    path: PathBuf,
    name: String,
    sha256: String,
    weights: Weights,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    /// Control tokens end the answer: end-of-turn markers are control tokens in every chat
    /// vocabulary we know, and a control token inside an answer means the turn is over anyway.
    stop: HashSet<u32>,
    /// What each token spells, for constrained decoding; `None` for control tokens.
    token_bytes: Vec<Option<Vec<u8>>>,
    context: usize,
    device: Device,
}

/// A problem with the model file itself, in words.
fn model_err(path: &Path, what: impl Into<String>) -> ChatError {
    ChatError::Model {
        path: path.display().to_string(),
        what: what.into(),
        source: None,
    }
}

/// A problem with the model file, caused by `source`.
fn failed(
    path: &Path,
    what: impl Into<String>,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> ChatError + '_ {
    let what = what.into();
    move |source| ChatError::Model {
        path: path.display().to_string(),
        what,
        source: Some(source),
    }
}

impl LocalChat {
    /// A GGUF file or a Hugging Face checkpoint directory.
    pub fn load(path: &Path, device: &Device) -> Result<LocalChat, ChatError> {
        if path.is_dir() {
            Self::load_hf(path, device)
        } else {
            Self::load_gguf(path, device)
        }
    }

    fn load_gguf(path: &Path, device: &Device) -> Result<LocalChat, ChatError> {
        let err = |d: String| model_err(path, d);
        let mut file = std::fs::File::open(path).map_err(|e| failed(path, "opening")(e.into()))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| failed(path, "not a readable GGUF file")(e.into()))?;
        let md = &content.metadata;
        let text = |k: &str| md.get(k).and_then(|v| v.to_string().ok()).cloned();
        let arch = text("general.architecture")
            .ok_or_else(|| err("no general.architecture in the metadata".into()))?;
        let name = text("general.name").unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let context_key = format!("{arch}.context_length");
        let declared = md
            .get(&context_key)
            .and_then(|v| v.to_u32().ok())
            .unwrap_or(2048) as usize;
        let tokenizer = tokenizer(path, md)?;
        let template_text = text("tokenizer.chat_template").ok_or_else(|| {
            err("no tokenizer.chat_template in the metadata; the reasoner needs a chat (instruct) model".into())
        })?;
        let token_text = |key: &str| {
            md.get(key)
                .and_then(|v| v.to_u32().ok())
                .and_then(|id| tokenizer.id_to_token(id))
                .unwrap_or_default()
        };
        let template = ChatTemplate::new(
            template_text,
            token_text("tokenizer.ggml.bos_token_id"),
            token_text("tokenizer.ggml.eos_token_id"),
        )
        .map_err(|e| failed(path, "tokenizer.chat_template")(e.into()))?;
        let mut stop: HashSet<u32> = control_tokens(md).into_iter().collect();
        if let Some(id) = md
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
        {
            stop.insert(id);
        }
        let token_bytes = spellings(&tokenizer, &stop);
        if !matches!(arch.as_str(), "llama" | "qwen2") {
            return Err(err(format!(
                "architecture {arch:?} is not supported (llama and qwen2 are)"
            )));
        }
        let elements: usize = content
            .tensor_infos
            .values()
            .map(|t| t.shape.elem_count())
            .sum();
        let quantized = content.tensor_infos.values().any(|t| {
            !matches!(
                t.ggml_dtype,
                GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16
            )
        });
        let weights = if quantized && elements <= DEQUANTIZE_UP_TO {
            let (wide, mut reader) =
                widened(&content, &mut file).map_err(|e| failed(path, "dequantizing")(e.into()))?;
            load_weights(&arch, wide, &mut reader, device)
        } else {
            load_weights(&arch, content, &mut file, device)
        }
        .map_err(|e| failed(path, format!("loading {arch} weights"))(e.into()))?;
        // candle's llama precomputes rotary tables for 4096 positions.
        let context = if arch == "llama" {
            declared.min(quantized_llama::MAX_SEQ_LEN)
        } else {
            declared
        };
        let sha256 = crate::checkpoint::weights_sha256(&[path.to_path_buf()])
            .map_err(|e| failed(path, "hashing")(e.into()))?;
        Ok(LocalChat {
            path: path.to_path_buf(),
            name,
            sha256,
            weights,
            tokenizer,
            template,
            stop,
            token_bytes,
            context,
            device: device.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The prompt text the template makes of these messages, ending where the answer starts.
    pub fn render(&self, messages: &[Message]) -> Result<String, ChatError> {
        let turns: Vec<(&str, &str)> = messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        self.template
            .render_messages(&turns)
            .map_err(|e| failed(&self.path, "rendering the chat template")(e.into()))
    }

    fn load_hf(dir: &Path, device: &Device) -> Result<LocalChat, ChatError> {
        let err = |d: String| model_err(dir, d);
        let read = |name: &str| -> Result<serde_json::Value, ChatError> {
            let text =
                std::fs::read_to_string(dir.join(name)).map_err(|e| failed(dir, name)(e.into()))?;
            serde_json::from_str(&text).map_err(|e| failed(dir, name)(e.into()))
        };
        let mut raw = read("config.json")?;
        let kind = raw["model_type"].as_str().unwrap_or("").to_string();
        let template = crate::checkpoint::chat_template(dir)
            .map_err(|e| failed(dir, "tokenizer_config.json")(e.into()))?
            .ok_or_else(|| err("no chat_template in tokenizer_config.json; the reasoner needs a chat (instruct) model".into()))?;
        let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| failed(dir, "tokenizer.json")(e))?;
        let shards =
            crate::checkpoint::weight_files(dir).map_err(|e| failed(dir, "weights")(e.into()))?;
        let dtype = candle_core::DType::F32;
        // SAFETY: the weight files are mapped read-only and not modified while the model lives.
        let vb = unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&shards, dtype, device) }
            .map_err(|e| failed(dir, "weights")(e.into()))?;
        let context = raw["max_position_embeddings"].as_u64().unwrap_or(2048) as usize;
        let weights = match kind.as_str() {
            "qwen2" => {
                // Newer transformers write `"sliding_window": null` when the window is off.
                if raw["sliding_window"].is_null() {
                    raw["sliding_window"] = raw["max_position_embeddings"].clone();
                }
                let cfg: qwen2::Config = serde_json::from_value(raw)
                    .map_err(|e| failed(dir, "config.json")(e.into()))?;
                Weights::HfQwen2(
                    qwen2::ModelForCausalLM::new(&cfg, vb)
                        .map_err(|e| failed(dir, "loading qwen2 weights")(e.into()))?,
                )
            }
            "llama" => {
                let cfg: llama::LlamaConfig = serde_json::from_value(raw)
                    .map_err(|e| failed(dir, "config.json")(e.into()))?;
                let config = cfg.into_config(false);
                let model = llama::Llama::load(vb, &config)
                    .map_err(|e| failed(dir, "loading llama weights")(e.into()))?;
                let cache = llama::Cache::new(true, dtype, &config, device)
                    .map_err(|e| failed(dir, "the KV cache")(e.into()))?;
                Weights::HfLlama {
                    model,
                    cache,
                    config,
                    device: device.clone(),
                }
            }
            other => {
                return Err(err(format!(
                    "model_type {other:?} is not supported (llama and qwen2 are)"
                )))
            }
        };
        // End of turn: the EOS ids the checkpoint names, and its special added tokens.
        let mut stop: HashSet<u32> = tokenizer
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id)
            .collect();
        for source in [
            read("config.json").ok(),
            read("generation_config.json").ok(),
        ]
        .into_iter()
        .flatten()
        {
            match &source["eos_token_id"] {
                serde_json::Value::Number(n) => stop.extend(n.as_u64().map(|n| n as u32)),
                serde_json::Value::Array(ids) => {
                    stop.extend(ids.iter().filter_map(|n| n.as_u64().map(|n| n as u32)))
                }
                _ => {}
            }
        }
        let token_bytes = spellings(&tokenizer, &stop);
        let sha256 = crate::checkpoint::weights_sha256(&shards)
            .map_err(|e| failed(dir, "hashing")(e.into()))?;
        Ok(LocalChat {
            path: dir.to_path_buf(),
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256,
            weights,
            tokenizer,
            template,
            stop,
            token_bytes,
            context,
            device: device.clone(),
        })
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ChatError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| failed(&self.path, "tokenizing")(e))
    }
}

impl ChatModel for LocalChat {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            kind: "local",
            model: self.name.clone(),
            endpoint: None,
            weights_sha256: Some(self.sha256.clone()),
            device: Some(crate::device::describe(&self.device)),
        }
    }

    fn complete(&mut self, request: &ChatRequest) -> Result<ChatReply, ChatError> {
        let prompt = self.render(&request.messages)?;
        let ids = self.encode(&prompt)?;
        if ids
            .len()
            .checked_add(request.max_tokens)
            .is_none_or(|total| total > self.context)
        {
            return Err(ChatError::TooLong {
                prompt: ids.len(),
                max_tokens: request.max_tokens,
                context: self.context,
            });
        }
        let gen = ChatError::Generate;
        let temperature = (request.temperature > 0.0).then_some(request.temperature);
        let mut sampler = LogitsProcessor::new(request.seed, temperature, None);
        self.weights.clear().map_err(gen)?;
        let mut out: Vec<u32> = Vec::new();
        let mut input = Tensor::new(ids.as_slice(), &self.device)
            .and_then(|t| t.unsqueeze(0))
            .map_err(gen)?;
        let mut pos = 0;
        let mut finish = "length";
        let mut form = request.constraint.clone();
        let mut state = form.as_ref().map(|f| f.start());
        while out.len() < request.max_tokens {
            if state == Some(State::Done) {
                finish = "stop";
                break;
            }
            let len = input.dim(1).map_err(gen)?;
            let mut logits = self
                .weights
                .forward(&input, pos)
                .and_then(|l| l.squeeze(0))
                .and_then(|l| l.to_dtype(candle_core::DType::F32))
                .map_err(gen)?;
            pos += len;
            if let (Some(form), Some(at)) = (&form, state) {
                let mut v: Vec<f32> = logits.to_vec1().map_err(gen)?;
                let mut any = false;
                // Most tokens fail on their first byte: test those 256 once.
                let mut first = [false; 256];
                for (b, ok) in first.iter_mut().enumerate() {
                    *ok = form.step(at, b as u8).is_some();
                }
                for (id, l) in v.iter_mut().enumerate() {
                    let ok = matches!(self.token_bytes.get(id), Some(Some(b))
                        if !b.is_empty() && first[b[0] as usize] && form.walk(at, b).is_some());
                    if ok {
                        any = true;
                    } else {
                        *l = f32::NEG_INFINITY;
                    }
                }
                if !any {
                    return Err(ChatError::NoContinuation);
                }
                logits = Tensor::new(v, &self.device).map_err(gen)?;
            }
            let next = sampler.sample(&logits).map_err(gen)?;
            if self.stop.contains(&next) {
                finish = "stop";
                break;
            }
            if let (Some(form), Some(at)) = (form.as_mut(), state) {
                state = self.token_bytes[next as usize]
                    .as_deref()
                    .and_then(|b| form.commit(at, b));
            }
            out.push(next);
            input = Tensor::new(&[next], &self.device)
                .and_then(|t| t.unsqueeze(0))
                .map_err(gen)?;
        }
        let text = self
            .tokenizer
            .decode(&out, true)
            .map_err(|e| failed(&self.path, "decoding")(e))?;
        Ok(ChatReply {
            text,
            prompt_tokens: ids.len(),
            completion_tokens: out.len(),
            finish_reason: finish.into(),
        })
    }
}

/// Models up to this many weights are dequantized at load: candle's CPU kernels for some
/// quantized formats (Q4_1 among them) are scalar, and a dense matmul is faster. Measured on
/// SmolLM2-135M Q4_1, 2-core Xeon, release: a 91-token plan answer in 27.6 s quantized and
/// 9.9-10.5 s dequantized, at 1.0 GB peak memory instead of 0.27 GB.
const DEQUANTIZE_UP_TO: usize = 400_000_000;

fn load_weights<R: std::io::Read + std::io::Seek>(
    arch: &str,
    content: gguf_file::Content,
    reader: &mut R,
    device: &Device,
) -> candle_core::Result<Weights> {
    Ok(if arch == "qwen2" {
        Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
            content, reader, device,
        )?)
    } else {
        Weights::Llama(quantized_llama::ModelWeights::from_gguf(
            content, reader, device,
        )?)
    })
}

/// The same GGUF in memory with every matrix in f16 (vectors in f32), which candle's loaders
/// turn into dense tensors.
fn widened(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
) -> candle_core::Result<(gguf_file::Content, std::io::Cursor<Vec<u8>>)> {
    let mut tensors = Vec::with_capacity(content.tensor_infos.len());
    for name in content.tensor_infos.keys() {
        let dense = content
            .tensor(file, name, &Device::Cpu)?
            .dequantize(&Device::Cpu)?;
        let dtype = if dense.rank() >= 2 {
            GgmlDType::F16
        } else {
            GgmlDType::F32
        };
        tensors.push((name.as_str(), QTensor::quantize(&dense, dtype)?));
    }
    // The writer aligns data to 32 bytes; an alignment key from the source would contradict it.
    let metadata: Vec<(&str, &Value)> = content
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != "general.alignment")
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut buffer = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut buffer, &metadata, &refs)?;
    drop(tensors);
    buffer.set_position(0);
    let wide = gguf_file::Content::read(&mut buffer)?;
    Ok((wide, buffer))
}

/// What each token spells, for constrained decoding; `None` for tokens that end the turn.
fn spellings(tokenizer: &Tokenizer, stop: &HashSet<u32>) -> Vec<Option<Vec<u8>>> {
    (0..tokenizer.get_vocab_size(true) as u32)
        .map(|id| {
            if stop.contains(&id) {
                return None;
            }
            let text = tokenizer.id_to_token(id)?;
            byte_level_bytes(&text)
                .or_else(|| tokenizer.decode(&[id], false).ok().map(String::into_bytes))
        })
        .collect()
}

fn control_tokens(md: &HashMap<String, Value>) -> Vec<u32> {
    const CONTROL: i32 = 3;
    md.get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|types| {
            types
                .iter()
                .enumerate()
                .filter(|(_, t)| t.to_i32().ok() == Some(CONTROL))
                .map(|(i, _)| i as u32)
                .collect()
        })
        .unwrap_or_default()
}

/// `tokenizer.json` beside the file (`NAME.tokenizer.json` or `tokenizer.json`), else the
/// byte-level BPE that GGUF's `gpt2` tokenizer model describes.
fn tokenizer(path: &Path, md: &HashMap<String, Value>) -> Result<Tokenizer, ChatError> {
    let err = |d: String| model_err(path, d);
    let dir = path.parent().unwrap_or(Path::new("."));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for beside in [
        dir.join(format!("{stem}.tokenizer.json")),
        dir.join("tokenizer.json"),
    ] {
        if beside.is_file() {
            return Tokenizer::from_file(&beside)
                .map_err(|e| failed(&beside, "not a tokenizer")(e));
        }
    }
    let kind = md
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if kind != "gpt2" {
        return Err(err(format!(
            "tokenizer.ggml.model is {kind:?}; only byte-level BPE (\"gpt2\") can be read from GGUF. Put the model's tokenizer.json beside the file"
        )));
    }
    let strings = |key: &str| -> Result<Vec<String>, ChatError> {
        md.get(key)
            .and_then(|v| v.to_vec().ok())
            .ok_or_else(|| err(format!("no {key} in the metadata")))?
            .iter()
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|e| failed(path, key)(e.into()))
            })
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges = strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| err(format!("tokenizer.ggml.merges: {m:?} is not a pair")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| failed(path, "building the BPE tokenizer")(e))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let specials: Vec<AddedToken> = control_tokens(md)
        .into_iter()
        .filter_map(|id| tokens.get(id as usize))
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reasoner/tiny-chat.gguf")
    }

    #[test]
    fn the_template_and_vocabulary_come_from_the_file() {
        let chat = LocalChat::load(&fixture(), &Device::Cpu).unwrap();
        let prompt = chat
            .render(&[
                Message::system("Plan."),
                Message::user("def f(x): return x"),
            ])
            .unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nPlan.<|im_end|>\n<|im_start|>user\ndef f(x): return x<|im_end|>\n<|im_start|>assistant\n"
        );
        let ids = chat.encode(&prompt).unwrap();
        // The control tokens are single tokens, not spelled out byte by byte.
        assert_eq!(ids[0], 8192);
        assert_eq!(ids.iter().filter(|&&i| i == 8193).count(), 2);
        let text = chat.tokenizer.decode(&ids, false).unwrap();
        assert_eq!(text, prompt);
    }

    #[test]
    fn generation_is_seeded_bounded_and_repeatable() {
        let mut chat = LocalChat::load(&fixture(), &Device::Cpu).unwrap();
        let request = ChatRequest {
            messages: vec![Message::user("hello")],
            max_tokens: 12,
            temperature: 0.0,
            seed: 1,
            json_schema: None,
            constraint: None,
        };
        let a = chat.complete(&request).unwrap();
        let b = chat.complete(&request).unwrap();
        assert_eq!(
            a.text, b.text,
            "the KV cache must be cleared between requests"
        );
        assert!(a.completion_tokens <= 12);
        assert_eq!(
            a.finish_reason == "length",
            a.completion_tokens == 12,
            "{a:?}"
        );
        assert!(a.prompt_tokens > 3);
        let info = chat.info();
        assert_eq!(info.kind, "local");
        assert!(info.weights_sha256.unwrap().starts_with("sha256:"));
    }

    /// Random weights, so only the form makes the answer parse: it must, every time, and name
    /// only candidates.
    #[test]
    fn constrained_answers_always_parse_and_name_candidates() {
        use crate::reasoner::constrain::PlanForm;
        let mut chat = LocalChat::load(&fixture(), &Device::Cpu).unwrap();
        let symbols = vec!["svc.users.load".to_string(), "svc.users.fetch".to_string()];
        for seed in 0..4 {
            let request = ChatRequest {
                messages: vec![Message::user(format!("plan {seed}"))],
                max_tokens: 200,
                temperature: 1.0,
                seed,
                json_schema: None,
                constraint: Some(PlanForm::new(&symbols, 40)),
            };
            let reply = chat.complete(&request).unwrap();
            assert_eq!(reply.finish_reason, "stop", "{reply:?}");
            let v: serde_json::Value =
                serde_json::from_str(&reply.text).unwrap_or_else(|e| panic!("{e}: {}", reply.text));
            for u in v["units"].as_array().unwrap() {
                assert!(symbols.contains(&u["symbol"].as_str().unwrap().to_string()));
                assert!(u["change"].as_str().unwrap().len() <= 40);
            }
        }
    }

    /// Hugging Face checkpoints (llama and qwen2, random weights): template from
    /// tokenizer_config.json, end of turn from the special tokens, the same constrained form.
    #[test]
    fn hugging_face_checkpoints_load_and_answer_in_form() {
        use crate::reasoner::constrain::PlanForm;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for dir in [
            root.join("reasoner/tiny-llama-chat"),
            root.join("compressor/tiny-qwen2"),
        ] {
            let mut chat = LocalChat::load(&dir, &Device::Cpu).unwrap();
            assert_eq!(
                chat.render(&[Message::user("hi")]).unwrap(),
                "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
            );
            assert!(
                chat.stop.contains(&0),
                "{}: <|endoftext|> ends the turn",
                dir.display()
            );
            let symbols = vec!["a.load".to_string(), "a.fetch".to_string()];
            let request = ChatRequest {
                messages: vec![Message::user("plan")],
                max_tokens: 120,
                temperature: 0.0,
                seed: 0,
                json_schema: None,
                constraint: Some(PlanForm::new(&symbols, 30)),
            };
            let a = chat.complete(&request).unwrap();
            let b = chat.complete(&request).unwrap();
            assert_eq!(
                a.text,
                b.text,
                "{}: the cache is reset per request",
                dir.display()
            );
            let v: serde_json::Value = serde_json::from_str(&a.text)
                .unwrap_or_else(|e| panic!("{}: {e}: {}", dir.display(), a.text));
            assert!(v["units"].is_array());
            assert!(chat.info().weights_sha256.unwrap().starts_with("sha256:"));
        }
    }

    #[test]
    fn a_prompt_over_the_context_is_refused() {
        let mut chat = LocalChat::load(&fixture(), &Device::Cpu).unwrap();
        let request = ChatRequest {
            messages: vec![Message::user("x = 1\n".repeat(2000))],
            max_tokens: 16,
            temperature: 0.0,
            seed: 1,
            json_schema: None,
            constraint: None,
        };
        assert!(matches!(
            chat.complete(&request),
            Err(ChatError::TooLong { .. })
        ));
    }

    #[test]
    fn files_that_are_not_chat_models_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("model.gguf");
        std::fs::write(&bogus, b"not gguf at all").unwrap();
        let e = LocalChat::load(&bogus, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("model.gguf") && e.contains("GGUF"), "{e}");
    }
}
