//! Per-test outcomes from what the runners write: JUnit XML (pytest's `--junitxml`, node's
//! `--test-reporter=junit`, or any `--test-cmd` that writes to `$OUROBOROS_JUNIT`) and the JSON
//! the unittest shim writes.

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;

/// What became of one test.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", content = "message", rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    /// Failed or errored, with the runner's message (an assertion's text, an exception).
    Failed(String),
    Skipped,
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("not JUnit XML")]
    Xml(#[from] quick_xml::Error),
    #[error("not the unittest shim's JSON")]
    Json(#[from] serde_json::Error),
}

/// `<testcase>` elements by id (`classname::name`, or `prefix::name` when there is no class
/// name), each failed if it holds `<failure>` or `<error>`, skipped if it holds `<skipped>`.
pub fn junit(xml: &str, prefix: &str) -> Result<BTreeMap<String, Outcome>, ResultsError> {
    let mut reader = Reader::from_str(xml);
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Outcome)> = None;
    // Inside <failure>/<error>: its text stands in for an empty message attribute.
    let mut in_failure = false;
    let mut text = String::new();
    loop {
        let event = reader.read_event()?;
        let (tag, closed) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = tag {
            let attr = |key: &[u8]| -> String {
                e.attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == key)
                    .and_then(|a| a.unescape_value().ok())
                    .map(|v| v.into_owned())
                    .unwrap_or_default()
            };
            match e.name().as_ref() {
                b"testcase" => {
                    if let Some((id, outcome)) = current.take() {
                        out.insert(id, outcome);
                    }
                    let (class, name) = (attr(b"classname"), attr(b"name"));
                    // node names every case's class `test`; its file is the owner then.
                    let owner = if class.is_empty() || class == "test" {
                        prefix.to_string()
                    } else {
                        class
                    };
                    let id = if owner.is_empty() {
                        name
                    } else {
                        format!("{owner}::{name}")
                    };
                    let outcome = match attr(b"failure") {
                        m if !m.is_empty() => Outcome::Failed(m),
                        _ => Outcome::Passed,
                    };
                    if closed {
                        out.insert(id, outcome);
                    } else {
                        current = Some((id, outcome));
                    }
                }
                b"failure" | b"error" => {
                    if let Some((_, outcome)) = current.as_mut() {
                        *outcome = Outcome::Failed(attr(b"message"));
                    }
                    in_failure = !closed;
                    text.clear();
                }
                b"skipped" => {
                    if let Some((_, outcome)) = current.as_mut() {
                        *outcome = Outcome::Skipped;
                    }
                }
                _ => {}
            }
            continue;
        }
        match event {
            Event::Text(t) if in_failure => text.push_str(&t.decode().unwrap_or_default()),
            Event::CData(t) if in_failure => text.push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) if in_failure => {
                let name = r.decode().unwrap_or_default();
                text.push_str(&entity(&name));
            }
            Event::End(e) if matches!(e.name().as_ref(), b"failure" | b"error") => {
                in_failure = false;
                if let Some((_, Outcome::Failed(m))) = current.as_mut() {
                    if m.is_empty() {
                        *m = text.trim().to_string();
                    }
                }
            }
            Event::End(e) if e.name().as_ref() == b"testcase" => {
                if let Some((id, outcome)) = current.take() {
                    out.insert(id, outcome);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some((id, outcome)) = current.take() {
        out.insert(id, outcome);
    }
    Ok(out)
}

/// The text an entity reference stands for (`lt`, `#10`, `#x41`); unknown ones as written.
fn entity(name: &str) -> String {
    let code = |digits: &str, radix: u32| u32::from_str_radix(digits, radix).ok();
    let ch = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        n => n
            .strip_prefix("#x")
            .and_then(|h| code(h, 16))
            .or_else(|| n.strip_prefix('#').and_then(|d| code(d, 10)))
            .and_then(char::from_u32),
    };
    ch.map_or_else(|| format!("&{name};"), String::from)
}

/// The shim's `[{"id", "outcome", "message"}]`.
pub fn shim(json: &str) -> Result<BTreeMap<String, Outcome>, ResultsError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        id: String,
        outcome: String,
        #[serde(default)]
        message: String,
    }
    let entries: Vec<Entry> = serde_json::from_str(json)?;
    Ok(entries
        .into_iter()
        .map(|e| {
            let outcome = match e.outcome.as_str() {
                "passed" => Outcome::Passed,
                "skipped" => Outcome::Skipped,
                _ => Outcome::Failed(e.message),
            };
            (e.id, outcome)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_junit_failures_errors_and_skips() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4">
<testcase classname="test_m.TestM" name="test_ok" time="0.001" />
<testcase classname="test_m.TestM" name="test_bad" time="0.001"><failure message="assert 2 == 3&#10;where 2 = f()">def test_bad(): ...</failure></testcase>
<testcase classname="test_m" name="test_boom" time="0.001"><error message="">Traceback: KeyError &lt;x&gt;</error></testcase>
<testcase classname="test_m" name="test_later" time="0"><skipped type="pytest.skip" message="later" /></testcase>
</testsuite></testsuites>"#;
        let r = junit(xml, "").unwrap();
        assert_eq!(r["test_m.TestM::test_ok"], Outcome::Passed);
        assert_eq!(
            r["test_m.TestM::test_bad"],
            Outcome::Failed("assert 2 == 3\nwhere 2 = f()".into())
        );
        assert_eq!(
            r["test_m::test_boom"],
            Outcome::Failed("Traceback: KeyError <x>".into())
        );
        assert_eq!(r["test_m::test_later"], Outcome::Skipped);
    }

    #[test]
    fn node_junit_cases_are_named_by_their_file() {
        let xml = r#"<testsuites><testcase name="adds" classname="test"/><testcase name="fails" classname="test" failure="2 !== 3"><failure type="testCodeFailure" message="2 !== 3">stack</failure></testcase></testsuites>"#;
        let r = junit(xml, "a.test.js").unwrap();
        assert_eq!(r["a.test.js::adds"], Outcome::Passed);
        assert_eq!(r["a.test.js::fails"], Outcome::Failed("2 !== 3".into()));
    }

    #[test]
    fn shim_json() {
        let r = shim(r#"[{"id": "t.T.test_a", "outcome": "passed"}, {"id": "t.T.test_b", "outcome": "failed", "message": "AssertionError: 1 != 2"}]"#).unwrap();
        assert_eq!(
            r["t.T.test_b"],
            Outcome::Failed("AssertionError: 1 != 2".into())
        );
        assert!(shim("nope").is_err());
    }
}
