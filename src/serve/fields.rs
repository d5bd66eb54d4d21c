//! The request fields a diffusion server reads, each checked once: which fields each route
//! knows, and the parsers that turn a field into a value or a 400 naming it.

use serde_json::Value;

use super::chat::number_in;
use super::{bad_request, ApiError};
use crate::diffusion::{CacheMode, EosPolicy};
use crate::engine::SamplingOptions;

/// The most tokens one request may ask to generate.
pub const MAX_TOKENS: u64 = 1 << 14;

/// What completions and chat share with OpenAI's API.
const STANDARD_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop",
    "stream",
    "n",
];

/// Ouroboros's own request fields, refused with `--openai-only`.
pub const EXTENSION_FIELDS: &[&str] = &[
    "steps",
    "block_length",
    "sampler",
    "threshold",
    "cache",
    "top_k",
    "alg_temp",
    "eps",
    "factor",
    "eos",
    "sub_block",
    "details",
];

pub const COMPLETION_FIELDS: &[&[&str]] =
    &[STANDARD_FIELDS, &["prompt", "suffix"], EXTENSION_FIELDS];
pub const CHAT_FIELDS: &[&[&str]] = &[
    STANDARD_FIELDS,
    &["messages", "max_completion_tokens"],
    EXTENSION_FIELDS,
];
pub const DENOISE_FIELDS: &[&[&str]] = &[
    &[
        "model",
        "tokens",
        "positions",
        "span",
        "temperature",
        "top_p",
        "seed",
    ],
    EXTENSION_FIELDS,
];
pub const LOSS_FIELDS: &[&[&str]] = &[&["model", "tokens", "positions", "targets"]];

/// A 400 naming the first field of `req` that none of `known` holds.
pub fn unknown_fields(req: &Value, known: &[&[&str]]) -> Result<(), ApiError> {
    let Some(obj) = req.as_object() else {
        return Err(bad_request("the body must be a JSON object"));
    };
    let all: Vec<&str> = known.iter().flat_map(|k| k.iter().copied()).collect();
    match obj.keys().find(|k| !all.contains(&k.as_str())) {
        Some(k) => Err(bad_request(format!(
            "unknown field {k:?} (known: {})",
            all.join(", ")
        ))),
        None => Ok(()),
    }
}

/// `field`: a list of whole numbers, each below `bound`.
pub fn below(req: &Value, field: &str, bound: usize) -> Result<Vec<usize>, ApiError> {
    req.get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| bad_request(format!("\"{field}\" must be a list of whole numbers")))?
        .iter()
        .map(|v| {
            v.as_u64()
                .map(|n| n as usize)
                .filter(|&n| n < bound)
                .ok_or_else(|| {
                    bad_request(format!("{field}: {v} is not a whole number below {bound}"))
                })
        })
        .collect()
}

pub fn optional_count(req: &Value, field: &str) -> Result<Option<usize>, ApiError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_TOKENS).contains(&n) => Ok(Some(n as usize)),
            _ => Err(bad_request(format!(
                "{field} {v}: must be a whole number from 1 to {MAX_TOKENS}"
            ))),
        },
    }
}

pub fn optional_parse<T: std::str::FromStr>(req: &Value, field: &str) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|e| bad_request(format!("{field}: {e}"))),
        Some(v) => Err(bad_request(format!("{field} {v}: must be a string"))),
    }
}

/// `details`: a boolean, default false.
pub fn details(req: &Value) -> Result<bool, ApiError> {
    match req.get("details") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(bad_request(format!("details {v}: must be true or false"))),
    }
}

/// `stop`: a string or a list of at most 4 strings.
pub fn stops(req: &Value) -> Result<Vec<String>, ApiError> {
    match req.get("stop") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if items.len() <= 4 => items
            .iter()
            .map(|i| {
                i.as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| bad_request("stop: every entry must be a non-empty string"))
            })
            .collect(),
        Some(v) => Err(bad_request(format!(
            "stop {v}: a string or a list of up to 4 strings"
        ))),
    }
}

/// The sampling settings every route shares, defaults as `generate`'s.
pub fn sampling(req: &Value) -> Result<SamplingOptions, ApiError> {
    let threshold = match req.get("threshold") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|t| *t > 0.0 && *t <= 1.0)
                .ok_or_else(|| bad_request(format!("threshold {v}: must be in (0, 1]")))?,
        ),
    };
    let top_p = match req.get("top_p") {
        None | Some(Value::Null) => None,
        Some(_) => Some(number_in(req, "top_p", 1.0, 0.0..=1.0)?),
    };
    let temperature = match req.get("temperature") {
        None | Some(Value::Null) => None,
        Some(_) => Some(number_in(req, "temperature", 0.0, 0.0..=2.0)?),
    };
    let seed = match req.get("seed") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| bad_request(format!("seed {v}: must be a whole number")))?,
    };
    let positive = |field: &str| -> Result<Option<f64>, ApiError> {
        match req.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| *x > 0.0 && x.is_finite())
                .map(Some)
                .ok_or_else(|| bad_request(format!("{field} {v}: must be a positive number"))),
        }
    };
    let defaults = SamplingOptions::default();
    let eps = positive("eps")?.unwrap_or(defaults.eps);
    if eps >= 1.0 {
        return Err(bad_request(format!("eps {eps}: must be below 1")));
    }
    Ok(SamplingOptions {
        steps: optional_count(req, "steps")?,
        sampler: optional_parse(req, "sampler")?,
        temperature,
        top_p,
        top_k: optional_count(req, "top_k")?,
        alg_temp: positive("alg_temp")?,
        eps,
        threshold,
        factor: positive("factor")?,
        cache: optional_parse::<CacheMode>(req, "cache")?.unwrap_or_default(),
        eos: optional_parse::<EosPolicy>(req, "eos")?.unwrap_or(defaults.eos),
        sub_block: optional_count(req, "sub_block")?,
        seed,
        ..defaults
    })
}
