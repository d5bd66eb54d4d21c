//! Secrets never go into a record. Values of the environment variables that hold credentials
//! are replaced wherever they appear, and so are things shaped like keys or inline passwords.

/// Environment variables whose values are secrets.
const SECRET_VARS: &[&str] = &[
    "OUROBOROS_API_KEY",
    "OUROBOROS_NEO4J_PASSWORD",
    "OPENAI_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
];

const MASK: &str = "[REDACTED]";

pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for var in SECRET_VARS {
        if let Ok(value) = std::env::var(var) {
            // Very short values would mask ordinary words; real keys are long.
            if value.len() >= 6 {
                out = out.replace(&value, MASK);
            }
        }
    }
    mask_tokens(&out)
}

/// Mask `sk-…`/`hf_…`-style keys, bearer tokens, URL credentials and `password=…` pairs.
fn mask_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut mask_next = false;
    for word in text.split_inclusive(|c: char| c.is_whitespace()) {
        let trimmed = word.trim_end();
        let tail = &word[trimmed.len()..];
        let lower = trimmed.to_ascii_lowercase();
        // `Authorization: Bearer <token>`: the keywords stay, the word after them goes.
        if lower == "bearer" || lower.ends_with("authorization:") {
            mask_next = true;
            out.push_str(word);
            continue;
        }
        if mask_next && !trimmed.is_empty() {
            out.push_str(MASK);
            out.push_str(tail);
            mask_next = false;
            continue;
        }
        if let Some(masked) = mask_assignment(trimmed, &lower) {
            out.push_str(&masked);
        } else if looks_like_key(trimmed) {
            out.push_str(MASK);
        } else if let Some(masked) = mask_url_credentials(trimmed) {
            out.push_str(&masked);
        } else {
            out.push_str(trimmed);
        }
        out.push_str(tail);
    }
    out
}

fn mask_assignment(word: &str, lower: &str) -> Option<String> {
    for key in [
        "password=",
        "passwd=",
        "api_key=",
        "apikey=",
        "token=",
        "secret=",
    ] {
        if let Some(pos) = lower.find(key) {
            let value_at = pos + key.len();
            if value_at < word.len() {
                return Some(format!("{}{MASK}", &word[..value_at]));
            }
        }
    }
    None
}

fn looks_like_key(word: &str) -> bool {
    let w = word.trim_matches(|c: char| "\"'`,;()[]{}".contains(c));
    let prefixed = ["sk-", "sk_", "hf_", "ghp_", "github_pat_", "xoxb-"]
        .iter()
        .any(|p| w.starts_with(p) && w.len() >= p.len() + 16);
    prefixed
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

/// `scheme://user:pass@host` → `scheme://user:[REDACTED]@host`.
fn mask_url_credentials(word: &str) -> Option<String> {
    let scheme_end = word.find("://")? + 3;
    let at = word[scheme_end..].find('@')? + scheme_end;
    let colon = word[scheme_end..at].find(':')? + scheme_end;
    Some(format!("{}{MASK}{}", &word[..=colon], &word[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_passwords_and_url_credentials_are_masked() {
        let text =
            "use sk-abcdefghijklmnopqrstuvwx and password=hunter22 at bolt://neo4j:s3cret@db:7687 \
                    with Authorization: Bearer abc.def.ghi";
        let r = redact(text);
        for secret in [
            "sk-abcdefghijklmnopqrstuvwx",
            "hunter22",
            "s3cret",
            "abc.def.ghi",
        ] {
            assert!(!r.contains(secret), "{secret} leaked: {r}");
        }
        assert!(r.contains("bolt://neo4j:[REDACTED]@db:7687"));
        assert!(r.starts_with("use [REDACTED] and password=[REDACTED]"));
    }

    #[test]
    fn ordinary_text_is_untouched() {
        let text = "Add caching to user service: skip tokens in sk-short, see http://example.com/a";
        assert_eq!(redact(text), text);
    }
}
