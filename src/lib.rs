//! Ouroboros: refactor code with a local masked-diffusion language model, and never let invalid
//! code reach disk.
//!
//! Data flows one way: CLI → pipeline → librarian → reasoner → compressor → builder → gate →
//! patch → provenance. This crate currently holds the model-free core: the safety [`gate`], the
//! [`patch`] engine and [`provenance`] records, and the [`cli`] that drives them.

pub mod builder;
pub mod cli;
pub mod compressor;
pub mod device;
pub mod diffusion;
pub mod gate;
pub mod librarian;
pub mod models;
pub mod patch;
pub mod pipeline;
pub mod provenance;
pub mod reasoner;
