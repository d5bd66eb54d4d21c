//! Checking a checkpoint's config.json before any tensor is built: every count at least one,
//! sizes that must divide do, ids inside the vocabulary, θ and ε finite and positive. A bad
//! value would otherwise load and produce garbage (`n_layers: 0`), only end-of-text
//! (`rope_theta: -1`), or fail deep in a tensor op that names neither file nor field.

/// One config field that cannot work, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub field: &'static str,
    pub value: String,
    pub why: String,
}

fn invalid(field: &'static str, value: impl ToString, why: impl Into<String>) -> Invalid {
    Invalid {
        field,
        value: value.to_string(),
        why: why.into(),
    }
}

pub fn at_least_one(field: &'static str, v: usize) -> Result<(), Invalid> {
    if v == 0 {
        return Err(invalid(field, v, "must be at least 1"));
    }
    Ok(())
}

pub fn positive(field: &'static str, v: f64) -> Result<(), Invalid> {
    if !(v.is_finite() && v > 0.0) {
        return Err(invalid(field, v, "must be a finite number above 0"));
    }
    Ok(())
}

/// `n` must be a multiple of `by` (`what` names the relation for the message).
pub fn divides(field: &'static str, n: usize, by: usize, what: &str) -> Result<(), Invalid> {
    if by == 0 || !n.is_multiple_of(by) {
        return Err(invalid(
            field,
            by,
            format!("{what} ({n}) is not a multiple of it"),
        ));
    }
    Ok(())
}

/// A token id must name a row of the embedding.
pub fn token(field: &'static str, id: Option<u32>, rows: usize) -> Result<(), Invalid> {
    match id {
        Some(id) if id as usize >= rows => Err(invalid(
            field,
            id,
            format!(
                "the vocabulary has {rows} rows (ids 0..{})",
                rows.saturating_sub(1)
            ),
        )),
        _ => Ok(()),
    }
}

/// A field the family cannot work without.
pub fn required(field: &'static str, v: Option<String>) -> Result<(), Invalid> {
    match v {
        Some(_) => Ok(()),
        None => Err(invalid(
            field,
            "missing",
            "this family needs it in config.json",
        )),
    }
}

pub fn even(field: &'static str, v: usize) -> Result<(), Invalid> {
    if !v.is_multiple_of(2) {
        return Err(invalid(
            field,
            v,
            "must be even (rotary embeddings pair dimensions)",
        ));
    }
    Ok(())
}

/// The weights must hold as many blocks as the config says.
pub fn blocks(field: &'static str, config: usize, in_weights: usize) -> Result<(), Invalid> {
    if config != in_weights {
        return Err(invalid(
            field,
            config,
            format!("the weights hold {in_weights} block(s)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_names_the_field() {
        assert_eq!(at_least_one("n_layers", 0).unwrap_err().field, "n_layers");
        assert!(positive("rope_theta", -1.0).is_err());
        assert!(positive("rope_theta", f64::NAN).is_err());
        assert!(positive("rope_theta", 1e6).is_ok());
        let e = divides("n_kv_heads", 6, 4, "n_heads").unwrap_err();
        assert_eq!((e.field, e.value.as_str()), ("n_kv_heads", "4"));
        assert!(e.why.contains("n_heads (6)"));
        assert!(divides("n_kv_heads", 6, 0, "n_heads").is_err());
        assert!(token("mask_token_id", Some(999_999), 300)
            .unwrap_err()
            .why
            .contains("300 rows"));
        assert!(token("mask_token_id", Some(2), 300).is_ok());
        assert!(blocks("n_layers", 2, 4).unwrap_err().why.contains("hold 4"));
        assert_eq!(required("block_size", None).unwrap_err().value, "missing");
        assert!(required("block_size", Some("4".into())).is_ok());
        assert!(even("head_dim", 7).is_err());
    }
}
