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
            if n.kind != NodeKind::File {
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

    /// Everything that depends on `symbol`, transitively: its callers, subclasses, and their
    /// dependents.
    pub fn blast_radius(&self, symbol: &GraphNode) -> Vec<Reached> {
        self.walk(
            self.index[&symbol.id],
            usize::MAX,
            true,
            &[EdgeKind::Calls, EdgeKind::Inherits],
        )
    }
}
