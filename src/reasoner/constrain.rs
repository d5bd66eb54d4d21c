//! Constrained decoding for the in-process reasoner: the answer can only be a plan in the one
//! JSON form the reasoner reads, naming only candidate units.
//!
//! ```text
//! {"units": [{"symbol": "<candidate>", "change": "<text>"}, {"symbol": ...}]}
//! ```
//!
//! The form is a byte automaton; at each step every vocabulary token whose bytes would leave it
//! is masked out, so even a 135M model writes parseable JSON, and the choice among symbols is
//! the model's own. Servers get the same form as a JSON schema (`response_format`), which
//! vLLM, SGLang, llama.cpp and Ollama enforce the same way.

/// How long a change description may be when the schema does not say.
pub const DEFAULT_CHANGE_BYTES: usize = 400;

const OPEN: &[u8] = br#"{"units": ["#;
const ITEM: &[u8] = br#"{"symbol": ""#;
const MID: &[u8] = br#"", "change": ""#;
const END_ITEM: &[u8] = br#""}"#;
const SEP: &[u8] = b", ";
const CLOSE: &[u8] = b"]}";

/// The fixed pieces of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lit {
    Open,
    Item,
    Mid,
    EndItem,
    Sep,
    Close,
}

impl Lit {
    fn bytes(self) -> &'static [u8] {
        match self {
            Lit::Open => OPEN,
            Lit::Item => ITEM,
            Lit::Mid => MID,
            Lit::EndItem => END_ITEM,
            Lit::Sep => SEP,
            Lit::Close => CLOSE,
        }
    }
}

/// Where the answer is in the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Inside a fixed piece of text, at byte `at`.
    Lit {
        lit: Lit,
        at: u8,
    },
    /// After `[`: an item or the end.
    ListStart,
    /// Spelling a symbol: the candidates `lo..hi` (sorted) share its first `depth` bytes.
    Symbol {
        lo: u32,
        hi: u32,
        depth: u16,
    },
    /// Inside the change text, `len` bytes long.
    Change {
        len: u16,
    },
    /// After an item: another one or the end.
    AfterItem,
    Done,
}

/// The plan form over a set of candidate symbols.
#[derive(Debug, Clone)]
pub struct PlanForm {
    symbols: Vec<Vec<u8>>,
    /// Symbols already named in the answer: each may appear once, so a small model cannot loop
    /// on one unit until its token budget runs out.
    used: Vec<bool>,
    max_change: u16,
}

impl PlanForm {
    pub fn new(symbols: &[String], max_change: usize) -> PlanForm {
        let mut symbols: Vec<Vec<u8>> = symbols
            .iter()
            .filter(|s| !s.is_empty() && !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20))
            .map(|s| s.as_bytes().to_vec())
            .collect();
        symbols.sort();
        symbols.dedup();
        PlanForm {
            used: vec![false; symbols.len()],
            symbols,
            max_change: max_change.min(u16::MAX as usize) as u16,
        }
    }

    /// The form for a JSON schema of the plan's shape, as the reasoner sends it: an object whose
    /// `units` items are `{"symbol": {"enum": [...]}, "change": {"type": "string"}}`. Other
    /// schemas give `None` (`serve` does not enforce general JSON schemas).
    pub fn from_schema(schema: &serde_json::Value) -> Option<PlanForm> {
        let item = schema.pointer("/properties/units/items/properties")?;
        if item.pointer("/change/type")?.as_str()? != "string" {
            return None;
        }
        let symbols = item
            .pointer("/symbol/enum")?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?;
        Some(PlanForm::new(&symbols, DEFAULT_CHANGE_BYTES))
    }

    pub fn start(&self) -> State {
        State::Lit {
            lit: Lit::Open,
            at: 0,
        }
    }

    /// The state after `byte`, or `None` if the form does not allow it there.
    pub fn step(&self, state: State, byte: u8) -> Option<State> {
        match state {
            State::Lit { lit, at } => {
                let text = lit.bytes();
                if text[at as usize] != byte {
                    return None;
                }
                let at = at + 1;
                if (at as usize) < text.len() {
                    return Some(State::Lit { lit, at });
                }
                Some(match lit {
                    Lit::Open => State::ListStart,
                    Lit::Item => State::Symbol {
                        lo: 0,
                        hi: self.symbols.len() as u32,
                        depth: 0,
                    },
                    Lit::Mid => State::Change { len: 0 },
                    Lit::EndItem => State::AfterItem,
                    Lit::Sep => State::Lit {
                        lit: Lit::Item,
                        at: 0,
                    },
                    Lit::Close => State::Done,
                })
            }
            State::ListStart => match byte {
                b'{' if self.used.contains(&false) => Some(State::Lit {
                    lit: Lit::Item,
                    at: 1,
                }),
                b']' => Some(State::Lit {
                    lit: Lit::Close,
                    at: 1,
                }),
                _ => None,
            },
            State::Symbol { lo, hi, depth } => {
                let d = depth as usize;
                let range = &self.symbols[lo as usize..hi as usize];
                if byte == b'"' {
                    // Sorted, so a candidate that ends here comes first in the range.
                    let ends = range.first().map(|s| s.len()) == Some(d) && !self.used[lo as usize];
                    return ends.then_some(State::Lit {
                        lit: Lit::Mid,
                        at: 1,
                    });
                }
                let start =
                    lo as usize + range.partition_point(|s| s.get(d).is_none_or(|&c| c < byte));
                let end =
                    lo as usize + range.partition_point(|s| s.get(d).is_none_or(|&c| c <= byte));
                self.used[start..end]
                    .contains(&false)
                    .then_some(State::Symbol {
                        lo: start as u32,
                        hi: end as u32,
                        depth: depth + 1,
                    })
            }
            State::Change { len } => match byte {
                b'"' => Some(State::Lit {
                    lit: Lit::EndItem,
                    at: 1,
                }),
                b'\\' | 0..=0x1f => None,
                _ if len >= self.max_change => None,
                _ => Some(State::Change { len: len + 1 }),
            },
            State::AfterItem => match byte {
                b',' if self.used.contains(&false) => Some(State::Lit {
                    lit: Lit::Sep,
                    at: 1,
                }),
                b']' => Some(State::Lit {
                    lit: Lit::Close,
                    at: 1,
                }),
                _ => None,
            },
            State::Done => None,
        }
    }

    /// The state after all of `bytes`, if the form allows them.
    pub fn walk(&self, mut state: State, bytes: &[u8]) -> Option<State> {
        for &b in bytes {
            state = self.step(state, b)?;
        }
        Some(state)
    }

    /// Like `walk`, for bytes that are now part of the answer: symbols they complete are used.
    pub fn commit(&mut self, mut state: State, bytes: &[u8]) -> Option<State> {
        for &b in bytes {
            let next = self.step(state, b)?;
            if let (State::Symbol { lo, .. }, b'"') = (state, b) {
                self.used[lo as usize] = true;
            }
            state = next;
        }
        Some(state)
    }
}

/// The bytes each token of a GPT-2-style byte-level vocabulary stands for. Such vocabularies
/// spell bytes with printable characters (GPT-2's `bytes_to_unicode` table); a token with a
/// character outside the table (an added or control token) gets `None`.
pub fn byte_level_bytes(token: &str) -> Option<Vec<u8>> {
    token.chars().map(byte_of).collect()
}

fn byte_of(c: char) -> Option<u8> {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let c = c as u32;
    if c < 256 && printable(c) {
        return Some(c as u8);
    }
    // The other 68 bytes are spelled 256, 257, ... in byte order.
    let n = c.checked_sub(256)?;
    (0u32..256)
        .filter(|&b| !printable(b))
        .nth(n as usize)
        .map(|b| b as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> PlanForm {
        PlanForm::new(
            &[
                "pkg.load".to_string(),
                "pkg.loader".to_string(),
                "pkg.fetch".to_string(),
            ],
            12,
        )
    }

    #[test]
    fn the_form_accepts_plans_naming_candidates_only() {
        let f = form();
        let ok = br#"{"units": [{"symbol": "pkg.load", "change": "cache it"}, {"symbol": "pkg.loader", "change": ""}]}"#;
        assert_eq!(f.walk(f.start(), ok), Some(State::Done));
        assert_eq!(f.walk(f.start(), br#"{"units": []}"#), Some(State::Done));
        for bad in [
            &br#"{"units": [{"symbol": "pkg.lo", "#[..],
            br#"{"units": [{"symbol": "pkg.other"#,
            br#"{"units": [{"symbol": "pkg.fetch", "change": "a\"b"#,
            br#"{"units": [{"symbol": "pkg.fetch", "change": "line\n"#,
            br#"{"units": [{"symbol": "pkg.fetch", "change": "far too long text"#,
            br#"{"units":["#,
            br#"{"units": [{"symbol": "pkg.fetch", "change": ""}]} "#,
        ] {
            assert_eq!(
                f.walk(f.start(), bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // A prefix shared by two symbols can end at the shorter or go on to the longer.
        let s = f
            .walk(f.start(), br#"{"units": [{"symbol": "pkg.load"#)
            .unwrap();
        assert!(f.step(s, b'"').is_some());
        assert!(f.step(s, b'e').is_some());
        assert!(f.step(s, b'x').is_none());
        // What the form makes is what the reasoner reads.
        let v: serde_json::Value = serde_json::from_slice(ok).unwrap();
        assert_eq!(v["units"][1]["symbol"], "pkg.loader");
    }

    #[test]
    fn each_symbol_is_named_once() {
        let mut f = PlanForm::new(&["a.x".to_string(), "a.xy".to_string()], 8);
        let s = f
            .commit(f.start(), br#"{"units": [{"symbol": "a.x", "change": ""}"#)
            .unwrap();
        // a.x is taken, a.xy is still open: the shared prefix may go on, but not end at a.x.
        let again = f.walk(s, br#", {"symbol": "a.x"#).unwrap();
        assert!(f.step(again, b'"').is_none());
        assert!(f.step(again, b'y').is_some());
        let s = f
            .commit(s, br#", {"symbol": "a.xy", "change": ""}"#)
            .unwrap();
        // Every symbol named: only the end is left.
        assert!(f.step(s, b',').is_none());
        assert_eq!(f.walk(s, b"]}"), Some(State::Done));
    }

    #[test]
    fn no_candidates_allow_only_an_empty_list() {
        let f = PlanForm::new(&[], 10);
        let s = f.walk(f.start(), OPEN).unwrap();
        assert!(f.step(s, b'{').is_none());
        assert_eq!(f.walk(s, b"]}"), Some(State::Done));
    }

    #[test]
    fn byte_level_tokens_decode_to_their_bytes() {
        assert_eq!(byte_level_bytes("Ġdef").unwrap(), b" def");
        assert_eq!(byte_level_bytes("Ċ").unwrap(), b"\n");
        assert_eq!(byte_level_bytes("{\"").unwrap(), b"{\"");
        assert_eq!(byte_level_bytes("Ã©").unwrap(), "é".as_bytes());
        assert_eq!(byte_level_bytes("<|im_end|>").unwrap(), b"<|im_end|>");
        assert!(byte_level_bytes("▁x").is_none());
        // Every byte has exactly one spelling.
        let mut seen = std::collections::HashSet::new();
        for c in (0u32..512).filter_map(char::from_u32) {
            if let Some(b) = byte_of(c) {
                assert!(seen.insert(b), "byte {b} spelled twice");
            }
        }
        assert_eq!(seen.len(), 256);
    }
}
