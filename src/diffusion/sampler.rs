//! Turning one position's logits into a candidate token and a confidence, the way each
//! published sampler does. These are pure functions over `&[f32]` rows so they can be checked
//! in isolation; the denoising loop decides which candidates to commit.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The remasking / unmasking strategies, by the names the reference code uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// LLaDA: commit the most probable candidates (confidence = p(x0)).
    LowConfidence,
    /// LLaDA: commit candidates in random order.
    Random,
    /// Dream: each masked position unmasks with probability 1 − s/t.
    Origin,
    /// Dream: confidence = top-1 probability.
    MaskgitPlus,
    /// Dream: confidence = top-1 − top-2 probability.
    TopkMargin,
    /// Dream: confidence = Σ p log p (negative entropy).
    Entropy,
    /// Open-dCoder's path planning: every step samples every generated position afresh and
    /// masks again the least confident share (decoded tokens too), shrinking to none.
    P2,
}

pub const SAMPLER_NAMES: &[&str] = &[
    "low_confidence",
    "random",
    "origin",
    "maskgit_plus",
    "topk_margin",
    "entropy",
    "p2",
];

impl SamplerKind {
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::LowConfidence => "low_confidence",
            SamplerKind::Random => "random",
            SamplerKind::Origin => "origin",
            SamplerKind::MaskgitPlus => "maskgit_plus",
            SamplerKind::TopkMargin => "topk_margin",
            SamplerKind::Entropy => "entropy",
            SamplerKind::P2 => "p2",
        }
    }

    /// LLaDA's samplers commit a precomputed count per step; Dream's follow `linspace(1, eps)`.
    pub fn is_llada_style(self) -> bool {
        matches!(self, SamplerKind::LowConfidence | SamplerKind::Random)
    }
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A sampler name that is not one of [`SAMPLER_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sampler `{0}` (one of: {names})", names = SAMPLER_NAMES.join(", "))]
pub struct UnknownSampler(pub String);

impl FromStr for SamplerKind {
    type Err = UnknownSampler;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "low_confidence" => SamplerKind::LowConfidence,
            "random" => SamplerKind::Random,
            "origin" => SamplerKind::Origin,
            "maskgit_plus" => SamplerKind::MaskgitPlus,
            "topk_margin" => SamplerKind::TopkMargin,
            "entropy" => SamplerKind::Entropy,
            "p2" => SamplerKind::P2,
            other => return Err(UnknownSampler(other.to_string())),
        })
    }
}

impl<'de> serde::Deserialize<'de> for SamplerKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Token-level sampling settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenSampling {
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
}

/// A candidate for one masked position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub token: u32,
    pub confidence: f64,
}

/// The first maximum (as torch.argmax picks it), never `banned`.
fn argmax_except(row: &[f32], banned: usize) -> usize {
    let mut best = usize::MAX;
    for (i, &v) in row.iter().enumerate() {
        if i != banned && (best == usize::MAX || v > row[best]) {
            best = i;
        }
    }
    best.min(row.len().saturating_sub(1))
}

fn softmax(row: &[f64]) -> Vec<f64> {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = row.iter().map(|&v| (v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// LLaDA: `x0 = argmax(logits + T·Gumbel)` (the reference's `exp(l)/(−ln U)^T` in f64), and for
/// `low_confidence` the confidence `softmax(logits)[x0]` of the noise-free logits.
///
/// `mask` is never proposed (committing it would leave the position masked yet counted as
/// done; trained models never predict it, random or sampled ones can), but its probability
/// mass stays in the normaliser as in the reference, so confidences are unchanged.
pub fn llada_candidate(
    row: &[f32],
    temperature: f64,
    kind: SamplerKind,
    mask: u32,
    rng: &mut ChaCha8Rng,
) -> Candidate {
    let banned = mask as usize;
    let token = if temperature <= 0.0 {
        argmax_except(row, banned)
    } else {
        let mut best = 0;
        let mut best_v = f64::NEG_INFINITY;
        for (i, &l) in row.iter().enumerate() {
            if i == banned {
                continue;
            }
            let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let v = l as f64 - temperature * (-u.ln()).ln();
            if v > best_v {
                best_v = v;
                best = i;
            }
        }
        best
    };
    let confidence = match kind {
        SamplerKind::Random => rng.random::<f64>(),
        _ => {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
            (row[token] as f64 - max).exp() / sum
        }
    };
    Candidate {
        token: token as u32,
        confidence,
    }
}

/// Dream's `sample_tokens`: temperature, then top-p, then top-k, softmax; a draw when T > 0,
/// else the argmax; and the confidence the sampler asks for. `mask` is never proposed, as in
/// [`llada_candidate`].
pub fn dream_candidate(
    row: &[f32],
    s: TokenSampling,
    kind: SamplerKind,
    mask: u32,
    rng: &mut ChaCha8Rng,
) -> Candidate {
    let banned = mask as usize;
    let t = if s.temperature > 0.0 {
        s.temperature
    } else {
        1.0
    };
    let mut logits: Vec<f64> = row.iter().map(|&v| v as f64 / t).collect();
    if let Some(p) = s.top_p.filter(|p| *p < 1.0) {
        top_p_filter(&mut logits, p);
    }
    if let Some(k) = s.top_k.filter(|k| *k > 0 && *k < logits.len()) {
        top_k_filter(&mut logits, k);
    }
    let probs = softmax(&logits);
    let token = if s.temperature > 0.0 {
        draw(&probs, banned, rng)
    } else {
        let mut best = usize::MAX;
        for (i, &p) in probs.iter().enumerate() {
            if i != banned && (best == usize::MAX || p > probs[best]) {
                best = i;
            }
        }
        best.min(probs.len() - 1)
    };
    let confidence = match kind {
        SamplerKind::TopkMargin => {
            let (mut a, mut b) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            for &p in &probs {
                if p > a {
                    b = a;
                    a = p;
                } else if p > b {
                    b = p;
                }
            }
            a - b
        }
        SamplerKind::Entropy => probs.iter().map(|&p| p * (p + 1e-10).ln()).sum(),
        _ => probs[token],
    };
    Candidate {
        token: token as u32,
        confidence,
    }
}

/// Keep the smallest set of tokens whose probability reaches `p` (the top token always stays).
/// SDAR's evaluation loop (`sample_with_temperature_topk_topp` in JetAstra/SDAR's
/// `huggingface_bd3.py`): the token is drawn from the temperature-scaled distribution after
/// top-k then top-p (the most probable at temperature 0), and its confidence is its
/// probability *before* those filters, so top-k 1 still ranks positions by how sure the model
/// is.
pub fn sdar_candidate(row: &[f32], s: TokenSampling, mask: u32, rng: &mut ChaCha8Rng) -> Candidate {
    let banned = mask as usize;
    let t = if s.temperature > 0.0 {
        s.temperature
    } else {
        1.0
    };
    let scaled: Vec<f64> = row.iter().map(|&v| v as f64 / t).collect();
    let unfiltered = softmax(&scaled);
    let token = if s.temperature > 0.0 {
        let mut logits = scaled;
        if let Some(k) = s.top_k.filter(|k| *k > 0 && *k < logits.len()) {
            top_k_filter(&mut logits, k);
        }
        if let Some(p) = s.top_p.filter(|p| *p < 1.0) {
            top_p_filter(&mut logits, p);
        }
        draw(&softmax(&logits), banned, rng)
    } else {
        argmax_except(row, banned)
    };
    Candidate {
        token: token as u32,
        confidence: unfiltered[token],
    }
}

/// One draw from `probs`, never `banned`.
fn draw(probs: &[f64], banned: usize, rng: &mut ChaCha8Rng) -> usize {
    let allowed: f64 = probs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != banned)
        .map(|(_, p)| p)
        .sum();
    let mut u: f64 = rng.random::<f64>() * allowed;
    let mut chosen = usize::MAX;
    for (i, &p) in probs.iter().enumerate() {
        if i == banned || p <= 0.0 {
            continue;
        }
        chosen = i;
        if u < p {
            break;
        }
        u -= p;
    }
    chosen.min(probs.len() - 1)
}

fn top_p_filter(logits: &mut [f64], p: f64) {
    let probs = softmax(logits);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let mut cumulative = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        // A token is dropped when the mass before it already exceeds p.
        if rank > 0 && cumulative > p {
            logits[i] = f64::NEG_INFINITY;
        }
        cumulative += probs[i];
    }
}

fn top_k_filter(logits: &mut [f64], k: usize) {
    let mut sorted: Vec<f64> = logits.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    for v in logits.iter_mut() {
        if *v < kth {
            *v = f64::NEG_INFINITY;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// A mask id outside every test row: nothing is banned.
    const NONE: u32 = u32::MAX;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn the_mask_token_is_never_proposed_but_keeps_its_mass() {
        let row = [0.0f32, 5.0, 1.0];
        let c = llada_candidate(&row, 0.0, SamplerKind::LowConfidence, 1, &mut rng());
        assert_eq!(c.token, 2);
        let p = softmax(&[0.0, 5.0, 1.0]);
        assert!(
            (c.confidence - p[2]).abs() < 1e-7,
            "confidence is over the full distribution"
        );
        for seed in 0..50 {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            assert_ne!(
                llada_candidate(&row, 5.0, SamplerKind::LowConfidence, 1, &mut r).token,
                1
            );
            let s = TokenSampling {
                temperature: 5.0,
                top_p: None,
                top_k: None,
            };
            assert_ne!(
                dream_candidate(&row, s, SamplerKind::Entropy, 1, &mut r).token,
                1
            );
        }
    }

    #[test]
    fn greedy_candidates_take_the_argmax() {
        let row = [0.1f32, 2.0, -1.0, 2.0];
        let c = llada_candidate(&row, 0.0, SamplerKind::LowConfidence, NONE, &mut rng());
        assert_eq!(c.token, 1, "first maximum wins");
        let e = (2.0f64).exp();
        let expected = e / ((0.1f64).exp() + e + (-1.0f64).exp() + e);
        assert!((c.confidence - expected).abs() < 1e-7);
        let d = dream_candidate(
            &row,
            TokenSampling {
                temperature: 0.0,
                top_p: None,
                top_k: None,
            },
            SamplerKind::MaskgitPlus,
            NONE,
            &mut rng(),
        );
        assert_eq!(d.token, 1);
    }

    #[test]
    fn dream_confidences() {
        let row = [3.0f32, 1.0, 0.0];
        let s = TokenSampling {
            temperature: 0.0,
            top_p: None,
            top_k: None,
        };
        let p = softmax(&[3.0, 1.0, 0.0]);
        let margin = dream_candidate(&row, s, SamplerKind::TopkMargin, NONE, &mut rng()).confidence;
        assert!((margin - (p[0] - p[1])).abs() < 1e-12);
        let ent = dream_candidate(&row, s, SamplerKind::Entropy, NONE, &mut rng()).confidence;
        let expected: f64 = p.iter().map(|q| q * (q + 1e-10).ln()).sum();
        assert!((ent - expected).abs() < 1e-12 && ent < 0.0);
    }

    #[test]
    fn filters_keep_the_head_of_the_distribution() {
        let mut l = vec![5.0, 4.0, 0.0, -3.0];
        top_k_filter(&mut l, 2);
        assert!(l[2].is_infinite() && l[3].is_infinite() && l[1].is_finite());
        let mut l = vec![10.0, 0.0, 0.0];
        top_p_filter(&mut l, 0.5);
        assert!(l[0].is_finite() && l[1].is_infinite() && l[2].is_infinite());
    }

    #[test]
    fn sampling_with_temperature_is_seeded() {
        let row: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let s = TokenSampling {
            temperature: 1.0,
            top_p: Some(0.9),
            top_k: None,
        };
        let a: Vec<u32> = (0..20)
            .map(|_| 0)
            .scan(rng(), |r, _| {
                Some(dream_candidate(&row, s, SamplerKind::Entropy, NONE, r).token)
            })
            .collect();
        let b: Vec<u32> = (0..20)
            .map(|_| 0)
            .scan(rng(), |r, _| {
                Some(dream_candidate(&row, s, SamplerKind::Entropy, NONE, r).token)
            })
            .collect();
        assert_eq!(a, b);
        assert!(
            a.iter().any(|&t| t != a[0]),
            "a temperature of 1 should vary the draw"
        );
        assert!(["entropy", "origin"]
            .iter()
            .all(|n| n.parse::<SamplerKind>().is_ok()));
        assert!("greedy"
            .parse::<SamplerKind>()
            .unwrap_err()
            .to_string()
            .contains("low_confidence"));
    }
}
