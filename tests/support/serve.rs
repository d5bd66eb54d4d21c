//! `ouroboros serve` as a separate process on a free loopback port, stopped when dropped: the
//! real server the remote reasoner, remote generator and serving tests talk to over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub struct Served {
    child: Child,
    /// The API base it printed (`http://127.0.0.1:PORT/v1`).
    pub base: String,
    /// The model name it printed.
    pub name: String,
}

impl Served {
    /// `ouroboros serve --port 0 ARGS`, with `key` (if any) as its API key.
    pub fn start(args: &[&str], key: Option<&str>) -> Served {
        let env: Vec<(&str, &str)> = key
            .map(|k| ("OUROBOROS_SERVE_API_KEY", k))
            .into_iter()
            .collect();
        Served::start_env(args, &env)
    }

    /// `ouroboros serve --port 0 ARGS` with these environment variables set.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ouroboros"));
        cmd.args(["serve", "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env_remove("OUROBOROS_MODEL")
            .env_remove("OUROBOROS_SERVE_API_KEY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let (base, name) = line
            .strip_prefix("listening on ")
            .and_then(|l| l.trim_end().split_once(" (model "))
            .unwrap_or_else(|| panic!("serve printed {line:?}"));
        Served {
            base: base.to_string(),
            name: name.trim_end_matches(')').to_string(),
            child,
        }
    }

    /// POST `body` to `route` (under the API base): the status and the JSON answer.
    pub fn post(&self, route: &str, body: &Value) -> (u16, Value) {
        let r = ureq::post(&format!("{}/{route}", self.base))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string());
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        (resp.status(), resp.into_json().unwrap())
    }

    /// GET `route` (under the API base): the status and the JSON answer.
    pub fn get(&self, route: &str) -> (u16, Value) {
        let resp = match ureq::get(&format!("{}/{route}", self.base)).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        (resp.status(), resp.into_json().unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
