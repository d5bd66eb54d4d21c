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
    let mut out = mask_private_keys(text);
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
        // `Authorization: Bearer <token>`, `password: x`, `"token": "x"`: the keywords stay,
        // the word after them goes.
        let key = lower.trim_matches(|c: char| "\"'`".contains(c));
        if lower == "bearer"
            || lower.ends_with("authorization:")
            || SPACED_KEYS.iter().any(|k| key.ends_with(k))
        {
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

/// `name: value` pairs whose value is a secret, written with a space after the colon.
const SPACED_KEYS: &[&str] = &[
    "password:",
    "password\":",
    "passwd:",
    "token:",
    "token\":",
    "secret:",
    "secret\":",
    "api_key:",
    "api_key\":",
    "apikey:",
];

fn looks_like_key(word: &str) -> bool {
    let w = word.trim_matches(|c: char| "\"'`,;()[]{}".contains(c));
    let prefixed = ["sk-", "sk_", "hf_", "ghp_", "github_pat_", "xoxb-"]
        .iter()
        .any(|p| w.starts_with(p) && w.len() >= p.len() + 16);
    // AWS access key ids: AKIA (long-term) or ASIA (temporary) and 16 more.
    let aws = w.len() == 20
        && (w.starts_with("AKIA") || w.starts_with("ASIA"))
        && w.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    aws || (prefixed
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)))
}

/// PEM private key blocks, markers kept and the key itself masked.
fn mask_private_keys(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(b) = rest.find(BEGIN) {
        let label_at = b + BEGIN.len();
        let Some(len) = rest[label_at..].find("-----") else {
            break;
        };
        let head_end = label_at + len + 5;
        let private = rest[label_at..label_at + len].contains("PRIVATE KEY");
        out.push_str(&rest[..head_end]);
        rest = &rest[head_end..];
        if private {
            out.push_str(MASK);
            rest = rest.find("-----END ").map_or("", |e| &rest[e..]);
        }
    }
    out.push_str(rest);
    out
}

/// Every string in a JSON value, redacted in place.
pub fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = redact(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
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
    fn aws_keys_spaced_pairs_and_private_keys_are_masked() {
        let text = "key AKIAIOSFODNN7EXAMPLE then password: hunter2 and \"token\": \"abc123xyz\"\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nxyz\n-----END RSA PRIVATE KEY-----\ndone";
        let r = redact(text);
        for secret in [
            "AKIAIOSFODNN7EXAMPLE",
            "hunter2",
            "abc123xyz",
            "MIIEowIBAAKCAQEA",
            "xyz\n",
        ] {
            assert!(!r.contains(secret), "{secret} leaked: {r}");
        }
        assert!(r.contains("-----BEGIN RSA PRIVATE KEY-----"), "{r}");
        assert!(r.contains("-----END RSA PRIVATE KEY-----\ndone"), "{r}");
        assert!(r.contains("password: [REDACTED]"), "{r}");
        let mut v = serde_json::json!({"request": {"task": "password=hunter2"}, "n": [1, "https://bob:pa55word@h/x"]});
        redact_json(&mut v);
        let s = v.to_string();
        assert!(!s.contains("hunter2") && !s.contains("pa55word"), "{s}");
        let public = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----";
        assert_eq!(redact(public), public);
    }

    #[test]
    fn ordinary_text_is_untouched() {
        let text = "Add caching to user service: skip tokens in sk-short, see http://example.com/a";
        assert_eq!(redact(text), text);
    }
}
