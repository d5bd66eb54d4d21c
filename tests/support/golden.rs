//! What the golden tests of the diffusion families share: the fixtures' JSON and safetensors
//! goldens, token-id lists, tiny checkpoints loaded on the CPU in f32, and the largest logit
//! difference between our output and the reference's.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use ouroboros::diffusion::{DiffusionLm, Overrides};
use serde_json::Value;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/diffusion");

/// A tiny checkpoint of `tests/fixtures/diffusion/`.
pub fn load(name: &str, overrides: &Overrides) -> DiffusionLm {
    DiffusionLm::load(
        &Path::new(FIXTURES).join(name),
        &Device::Cpu,
        DType::F32,
        overrides,
    )
    .unwrap()
}

/// A golden JSON file of `tests/fixtures/diffusion/`.
pub fn json(name: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A golden safetensors file of `tests/fixtures/diffusion/`.
pub fn tensors(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(Path::new(FIXTURES).join(name), &Device::Cpu).unwrap()
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// An int64 tensor of token ids as ours.
pub fn token_ids(t: &Tensor) -> Vec<u32> {
    t.to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|v| v as u32)
        .collect()
}

/// max |ours − expected| over every logit, the shapes checked first.
pub fn max_diff(ours: Tensor, expected: &Tensor, name: &str) -> f32 {
    assert_eq!(ours.dims(), expected.dims(), "{name}");
    (ours - expected)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
