//! Memory-mapped safetensors shards as a candle `VarBuilder` backend.
//!
//! candle copies each tensor out of the mapping on the CPU. Left alone, the mapped pages stay
//! resident next to the copies and the load peaks near twice the weights' size. This backend
//! drops each tensor's pages (`MADV_DONTNEED`, harmless on a read-only file mapping) as soon as
//! it has been copied, so the peak stays near the weights' size.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use memmap2::Mmap;
use safetensors::tensor::{Dtype as StDtype, SafeTensors};

struct Entry {
    shard: usize,
    dtype: DType,
    shape: Vec<usize>,
    /// Absolute byte range in the shard file.
    start: usize,
    end: usize,
}

pub struct MappedWeights {
    maps: Vec<(PathBuf, Mmap)>,
    entries: HashMap<String, Entry>,
}

fn err(path: &Path, message: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{}: {message}", path.display()))
}

fn to_dtype(d: StDtype, path: &Path, name: &str) -> Result<DType> {
    Ok(match d {
        StDtype::F32 => DType::F32,
        StDtype::F16 => DType::F16,
        StDtype::BF16 => DType::BF16,
        StDtype::F64 => DType::F64,
        StDtype::U8 => DType::U8,
        StDtype::U32 => DType::U32,
        StDtype::I64 => DType::I64,
        other => {
            return Err(err(
                path,
                format!("tensor {name} has unsupported dtype {other:?}"),
            ))
        }
    })
}

impl MappedWeights {
    pub fn open(shards: &[PathBuf]) -> Result<MappedWeights> {
        let mut maps = Vec::with_capacity(shards.len());
        let mut entries = HashMap::new();
        for (i, path) in shards.iter().enumerate() {
            let file = File::open(path).map_err(|e| err(path, e))?;
            // SAFETY: a read-only private mapping of a checkpoint file that is not modified
            // while we run; all reads are bounds-checked against the parsed header below.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| err(path, e))?;
            let (header_len, meta) = SafeTensors::read_metadata(&map)
                .map_err(|e| err(path, format!("not a valid safetensors file ({e})")))?;
            let base = 8 + header_len;
            for (name, info) in meta.tensors() {
                let (start, end) = (base + info.data_offsets.0, base + info.data_offsets.1);
                if end > map.len() || start > end {
                    return Err(err(
                        path,
                        format!("tensor {name} lies outside the file (truncated shard?)"),
                    ));
                }
                let dtype = to_dtype(info.dtype, path, &name)?;
                let expected = info.shape.iter().product::<usize>() * dtype.size_in_bytes();
                if expected != end - start {
                    return Err(err(
                        path,
                        format!(
                            "tensor {name}: shape {:?} needs {expected} bytes, the file has {}",
                            info.shape,
                            end - start
                        ),
                    ));
                }
                entries.insert(
                    name.clone(),
                    Entry {
                        shard: i,
                        dtype,
                        shape: info.shape.clone(),
                        start,
                        end,
                    },
                );
            }
            maps.push((path.clone(), map));
        }
        Ok(MappedWeights { maps, entries })
    }

    /// How many numbered blocks the weights hold under `prefix` (`model.layers.` counts the
    /// distinct N of `model.layers.N.…`).
    pub fn blocks_under(&self, prefix: &str) -> usize {
        let mut seen = std::collections::HashSet::new();
        for name in self.entries.keys() {
            if let Some(rest) = name.strip_prefix(prefix) {
                if let Some(n) = rest.split('.').next().and_then(|n| n.parse::<usize>().ok()) {
                    seen.insert(n);
                }
            }
        }
        seen.len()
    }

    pub fn param_count(&self) -> usize {
        self.entries
            .values()
            .map(|e| e.shape.iter().product::<usize>())
            .sum()
    }

    fn load(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        let e = self.entries.get(name).ok_or_else(|| {
            candle_core::Error::Msg(format!("tensor {name} is missing from the checkpoint"))
        })?;
        let (_, map) = &self.maps[e.shard];
        let t = Tensor::from_raw_buffer(&map[e.start..e.end], e.dtype, &e.shape, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(dev)?;
        release(map, e.start, e.end);
        Ok(t)
    }
}

/// Drop the whole pages inside `start..end` from this process's resident set.
fn release(map: &Mmap, start: usize, end: usize) {
    const PAGE: usize = 4096;
    let first = start.div_ceil(PAGE) * PAGE;
    let last = end / PAGE * PAGE;
    if last > first {
        // SAFETY: DONTNEED on a read-only file mapping only discards cached pages; later reads
        // fault them back in from the file. No reference into these pages outlives this call.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, last - first)
        };
    }
}

impl SimpleBackend for MappedWeights {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        if let Some(e) = self.entries.get(name) {
            if e.shape.as_slice() != s.dims() {
                let (path, _) = &self.maps[e.shard];
                return Err(err(path, format!("shape mismatch for {name}: the model expects {:?}, the checkpoint has {:?}", s.dims(), e.shape)));
            }
        }
        self.load(name, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.load(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
}

/// Weights drawn where they will live, for timing a shape whose checkpoint is not here (a 7B
/// layout on a GPU machine with no copy of the model): norm scales are 1, other vectors 0, and
/// matrices N(0, 0.02) from the device's own generator, seeded. Speed does not depend on the
/// values once the tokens committed per step are fixed.
pub struct RandomWeights {
    params: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl RandomWeights {
    /// The backend, and a counter of the parameters it has drawn.
    pub fn new(
        device: &Device,
        seed: u64,
    ) -> Result<(
        RandomWeights,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    )> {
        // candle's CPU generator cannot be seeded; there the draw differs run to run, which
        // timing does not mind.
        if !device.is_cpu() {
            device.set_seed(seed)?;
        }
        let params = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        Ok((
            RandomWeights {
                params: params.clone(),
            },
            params,
        ))
    }
}

impl SimpleBackend for RandomWeights {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        self.params
            .fetch_add(s.elem_count(), std::sync::atomic::Ordering::Relaxed);
        let leaf = name.rsplit('.').nth(1).unwrap_or(name);
        match s.rank() {
            0 | 1 if leaf.contains("norm") || leaf.starts_with("ln") => Tensor::ones(s, dtype, dev),
            0 | 1 => Tensor::zeros(s, dtype, dev),
            _ => Tensor::randn(0f32, 0.02, s, dev)?.to_dtype(dtype),
        }
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> Result<Tensor> {
        Err(candle_core::Error::Msg(format!(
            "random weights: {name} was asked for without a shape"
        )))
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}
