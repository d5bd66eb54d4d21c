//! Questions the later stages ask, answered over an in-memory adjacency built from the store.

use std::collections::{HashMap, HashSet, VecDeque};

use super::extract::NodeKind;
use super::resolve::{EdgeKind, Graph, GraphNode};

pub struct CodeGraph {
    pub graph: Graph,
    index: HashMap<String, usize>,
    by_symbol: HashMap<String, usize>,
    out: HashMap<usize, Vec<(usize, EdgeKind)>>,
    inc: HashMap<usize, Vec<(usize, EdgeKind)>>,
}

/// A symbol reached from another, and how far away it is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reached {
    pub symbol: String,
    pub kind: &'static str,
    pub file: String,
    pub line: usize,
    pub depth: usize,
}

impl CodeGraph {
    pub fn new(graph: Graph) -> CodeGraph {
        let index: HashMap<String, usize> = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        let mut by_symbol = HashMap::new();
        for (i, n) in graph.nodes.iter().enumerate() {
            if !matches!(n.kind, NodeKind::File | NodeKind::Import) {
                by_symbol.entry(n.symbol.clone()).or_insert(i);
            }
        }
        let mut out: HashMap<usize, Vec<(usize, EdgeKind)>> = HashMap::new();
        let mut inc: HashMap<usize, Vec<(usize, EdgeKind)>> = HashMap::new();
        for e in &graph.edges {
            if let (Some(&s), Some(&t)) = (index.get(&e.source), index.get(&e.target)) {
                out.entry(s).or_default().push((t, e.kind));
                inc.entry(t).or_default().push((s, e.kind));
            }
        }
        CodeGraph {
            graph,
            index,
            by_symbol,
            out,
            inc,
        }
    }

    pub fn find(&self, symbol: &str) -> Option<&GraphNode> {
        self.by_symbol.get(symbol).map(|&i| &self.graph.nodes[i])
    }

    /// Symbols whose names end like `symbol`, for "did you mean" messages.
    pub fn suggest(&self, symbol: &str) -> Vec<String> {
        let last = symbol.rsplit(['.', ':']).next().unwrap_or(symbol);
        let mut s: Vec<String> = self
            .by_symbol
            .keys()
            .filter(|k| k.rsplit(['.', ':']).next() == Some(last))
            .cloned()
            .collect();
        s.sort();
        s.truncate(5);
        s
    }

    fn walk(&self, start: usize, depth: usize, incoming: bool, kinds: &[EdgeKind]) -> Vec<Reached> {
        let adj = if incoming { &self.inc } else { &self.out };
        let mut seen = HashSet::from([start]);
        let mut queue = VecDeque::from([(start, 0usize)]);
        let mut found = Vec::new();
        while let Some((n, d)) = queue.pop_front() {
            if d == depth {
                continue;
            }
            for &(m, k) in adj.get(&n).map(Vec::as_slice).unwrap_or(&[]) {
                if kinds.contains(&k) && seen.insert(m) {
                    let node = &self.graph.nodes[m];
                    found.push(Reached {
                        symbol: node.symbol.clone(),
                        kind: node.kind.name(),
                        file: node.file.clone(),
                        line: node.lines.0,
                        depth: d + 1,
                    });
                    queue.push_back((m, d + 1));
                }
            }
        }
        found.sort_by(|a, b| (a.depth, &a.symbol).cmp(&(b.depth, &b.symbol)));
        found
    }

    pub fn callers(&self, symbol: &GraphNode, depth: usize) -> Vec<Reached> {
        self.walk(self.index[&symbol.id], depth, true, &[EdgeKind::Calls])
    }

    pub fn callees(&self, symbol: &GraphNode, depth: usize) -> Vec<Reached> {
        self.walk(self.index[&symbol.id], depth, false, &[EdgeKind::Calls])
    }

    /// The definitions `symbol` uses directly: what it calls, the module-level symbols it
    /// reads, and the classes it inherits from.
    pub fn uses(&self, symbol: &GraphNode) -> Vec<Reached> {
        self.walk(
            self.index[&symbol.id],
            1,
            false,
            &[EdgeKind::Calls, EdgeKind::References, EdgeKind::Inherits],
        )
    }

    /// Test files that reach `symbol`: files among its transitive dependents whose path looks
    /// like a test (`tests/`, `test_*.py`, `*_test.py`, `*.test.ts`, `*.spec.js`, `__tests__/`).
    pub fn tests_reaching(&self, symbol: &GraphNode) -> Vec<String> {
        let mut files: Vec<String> = self
            .blast_radius(symbol)
            .into_iter()
            .map(|r| r.file)
            .filter(|f| is_test_file(f))
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// PageRank over the symbol graph (calls, inheritance and references, rank flowing from
    /// user to used),
    /// personalised to `targets`: the random walk restarts at the targets, so the ranking says
    /// what matters most *to them*. Returns (symbol, score), highest first.
    pub fn personalized_pagerank(
        &self,
        targets: &[&GraphNode],
        limit: usize,
    ) -> Vec<(String, f64)> {
        const DAMPING: f64 = 0.85;
        const ITERATIONS: usize = 50;
        let n = self.graph.nodes.len();
        let starts: Vec<usize> = targets
            .iter()
            .filter_map(|t| self.index.get(&t.id).copied())
            .collect();
        if n == 0 || starts.is_empty() {
            return Vec::new();
        }
        let mut restart = vec![0.0; n];
        for &s in &starts {
            restart[s] += 1.0 / starts.len() as f64;
        }
        let links = |i: usize| -> Vec<usize> {
            self.out
                .get(&i)
                .map(|v| {
                    v.iter()
                        .filter(|(_, k)| {
                            matches!(
                                k,
                                EdgeKind::Calls | EdgeKind::Inherits | EdgeKind::References
                            )
                        })
                        .map(|(t, _)| *t)
                        .collect()
                })
                .unwrap_or_default()
        };
        let out_links: Vec<Vec<usize>> = (0..n).map(links).collect();
        let mut rank = restart.clone();
        for _ in 0..ITERATIONS {
            let mut next: Vec<f64> = restart.iter().map(|r| (1.0 - DAMPING) * r).collect();
            let mut dangling = 0.0;
            for (i, targets) in out_links.iter().enumerate() {
                if targets.is_empty() {
                    dangling += rank[i];
                } else {
                    let share = DAMPING * rank[i] / targets.len() as f64;
                    for &t in targets {
                        next[t] += share;
                    }
                }
            }
            // A walk that reaches a symbol with no outgoing links restarts at the targets.
            for (v, r) in next.iter_mut().zip(&restart) {
                *v += DAMPING * dangling * r;
            }
            rank = next;
        }
        let mut scored: Vec<(String, f64)> = rank
            .into_iter()
            .enumerate()
            .filter(|(i, r)| {
                *r > 0.0 && !matches!(self.graph.nodes[*i].kind, NodeKind::File | NodeKind::Module)
            })
            .map(|(i, r)| (self.graph.nodes[i].symbol.clone(), r))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        scored.truncate(limit);
        scored
    }

    /// Everything that depends on `symbol`, transitively: its callers, subclasses, the
    /// functions that read it, and their dependents.
    pub fn blast_radius(&self, symbol: &GraphNode) -> Vec<Reached> {
        self.walk(
            self.index[&symbol.id],
            usize::MAX,
            true,
            &[EdgeKind::Calls, EdgeKind::Inherits, EdgeKind::References],
        )
    }
}

fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.starts_with("tests/")
        || path.starts_with("test/")
        || path.contains("/tests/")
        || path.contains("/test/")
        || path.contains("__tests__/")
        || name.starts_with("test_")
        || name.ends_with("_test.py")
        || [".test.", ".spec."].iter().any(|m| name.contains(m))
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_files_are_recognised() {
        for t in [
            "tests/test_a.py",
            "pkg/tests/x.py",
            "a/test_b.py",
            "b_test.py",
            "src/x.test.ts",
            "src/__tests__/y.tsx",
            "z.spec.js",
        ] {
            assert!(super::is_test_file(t), "{t}");
        }
        for f in ["src/contest.py", "latest.py", "src/testing_utils.ts"] {
            assert!(!super::is_test_file(f), "{f}");
        }
    }
}
