//! Ouroboros: refactor code with a local masked-diffusion language model, and never let invalid
//! code reach disk.
//!
//! Data flows one way: CLI → pipeline → librarian → reasoner → compressor → builder → gate →
//! patch → provenance. Each stage is a module: [`librarian`] (the code graph), [`reasoner`]
//! (the plan, optionally refined by a chat model), [`compressor`] (context fitted to the budget),
//! [`builder`] (the diffusion model writes and heals units, on [`diffusion`]), [`gate`] (parse
//! before write), [`patch`] (diff, backup, atomic write, rollback) and [`provenance`]; the
//! [`pipeline`] runs them in order and the [`cli`] drives it.

pub mod behaviour;
pub mod builder;
pub mod checkpoint;
pub mod cli;
pub mod compressor;
pub mod cpu_tuning;
pub mod device;
pub mod diffusion;
pub mod engine;
pub mod evals;
pub mod gate;
pub mod hash;
pub mod http;
pub mod interrupt;
pub mod kernels;
pub mod lang;
pub mod librarian;
pub mod memory;
pub mod models;
pub mod offline;
pub mod patch;
pub mod pipeline;
pub mod provenance;
pub mod reasoner;
pub mod serve;
