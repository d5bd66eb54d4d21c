//! Scoring completions on worker threads while the model goes on generating: programs are
//! queued as they are made and run in the sandbox by `--exec-jobs` workers.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::sandbox::{Outcome, Sandbox, SandboxError};

/// Which problem and sample a program belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub problem: usize,
    pub sample: usize,
}

pub struct Scored {
    pub key: Key,
    pub outcome: Result<Outcome, SandboxError>,
}

pub struct Scorer {
    jobs: Option<Sender<(Key, String)>>,
    results: Receiver<Scored>,
    workers: Vec<JoinHandle<()>>,
    queued: usize,
    received: usize,
}

impl Scorer {
    pub fn new(sandbox: Arc<Sandbox>, workers: usize) -> Scorer {
        let (job_tx, job_rx) = channel::<(Key, String)>();
        let (res_tx, res_rx) = channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..workers.max(1))
            .map(|_| {
                let (jobs, results, sandbox) = (job_rx.clone(), res_tx.clone(), sandbox.clone());
                std::thread::spawn(move || loop {
                    // The lock is held only while taking a job, not while running it.
                    let next = jobs.lock().map(|rx| rx.recv());
                    let Ok(Ok((key, program))) = next else {
                        return;
                    };
                    let outcome = sandbox.run(&program);
                    if results.send(Scored { key, outcome }).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Scorer {
            jobs: Some(job_tx),
            results: res_rx,
            workers,
            queued: 0,
            received: 0,
        }
    }

    pub fn submit(&mut self, key: Key, program: String) {
        if let Some(tx) = &self.jobs {
            if tx.send((key, program)).is_ok() {
                self.queued += 1;
            }
        }
    }

    /// Results that are ready now.
    pub fn ready(&mut self) -> Vec<Scored> {
        let out: Vec<Scored> = self.results.try_iter().collect();
        self.received += out.len();
        out
    }

    /// Every result not yet taken, waiting for the workers to finish.
    pub fn finish(mut self) -> Vec<Scored> {
        self.jobs = None;
        let mut out = Vec::new();
        while self.received < self.queued {
            match self.results.recv() {
                Ok(s) => {
                    self.received += 1;
                    out.push(s);
                }
                Err(_) => break,
            }
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evals::sandbox::Limits;
    use std::time::Duration;

    #[test]
    fn every_program_is_scored_once() {
        if std::process::Command::new("python3")
            .arg("-c")
            .arg("pass")
            .status()
            .is_err()
        {
            eprintln!("skipped: no python3 on PATH");
            return;
        }
        let sandbox = Sandbox::new(
            "python3".into(),
            Limits::with_timeout(Duration::from_secs(5)),
        )
        .unwrap();
        let mut scorer = Scorer::new(Arc::new(sandbox), 3);
        for i in 0..7 {
            let program = format!("assert {i} % 2 == 0");
            scorer.submit(
                Key {
                    problem: i,
                    sample: 0,
                },
                program,
            );
        }
        let mut got = scorer.ready();
        got.extend(scorer.finish());
        let mut passed: Vec<(usize, bool)> = got
            .iter()
            .map(|s| (s.key.problem, s.outcome.as_ref().unwrap().verdict.passed()))
            .collect();
        passed.sort();
        let want: Vec<(usize, bool)> = (0..7).map(|i| (i, i % 2 == 0)).collect();
        assert_eq!(passed, want);
    }
}
