//! Functional-correctness benchmarks: HumanEval, HumanEval-Infilling and MBPP, scored by
//! running each completion against the benchmark's tests in a sandbox, with pass@k over
//! samples. `bench humaneval|humaneval-infill|mbpp` drives them.

pub mod data;
pub mod passk;
pub mod prompt;
pub mod sandbox;
pub mod score;
