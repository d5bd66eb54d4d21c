//! One printer for every benchmark table, driven by its columns, in the manner of llama-bench:
//! every varied parameter is a column, results are mean ± sd. `md` shows the columns meant for
//! reading, and `csv` and `jsonl` carry every column under the same keys (one schema), a
//! `mean ± sd` cell becoming `<key>_mean` and `<key>_sd`.

use std::fmt::Write as _;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Md,
    Csv,
    Jsonl,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "md" => Ok(Format::Md),
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            other => Err(format!("{other}: expected md, csv or jsonl")),
        }
    }
}

/// A cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(u64),
    /// A number shown with this many decimals (full precision in jsonl).
    Num(f64, usize),
    /// Mean and standard deviation, shown with this many decimals.
    MeanSd(f64, f64, usize),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Int(n as u64)
    }
}

/// A column: its key in csv and jsonl, its title in md (`None`: not shown there).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub key: &'static str,
    pub title: Option<&'static str>,
}

/// A column shown in md under `title`.
pub const fn col(key: &'static str, title: &'static str) -> Column {
    Column {
        key,
        title: Some(title),
    }
}

/// A column for csv and jsonl only.
pub const fn data(key: &'static str) -> Column {
    Column { key, title: None }
}

/// What every benchmark row starts and ends with.
pub struct RowMeta {
    pub model: String,
    pub params: usize,
    pub backend: String,
    pub dtype: String,
}

const HEAD: [Column; 4] = [
    col("model", "model"),
    col("params", "params"),
    col("backend", "backend"),
    col("dtype", "dtype"),
];
const TAIL: [Column; 3] = [data("commit"), data("device_name"), data("date")];

pub struct Report {
    columns: Vec<Column>,
    rows: Vec<Vec<Value>>,
    /// A line under the md table (what it measured, on which commit and machine).
    pub note: String,
}

impl Report {
    /// A table whose rows are the meta columns around `columns`.
    pub fn new(columns: &[Column]) -> Report {
        let mut all = HEAD.to_vec();
        all.extend_from_slice(columns);
        all.extend_from_slice(&TAIL);
        Report {
            columns: all,
            rows: Vec::new(),
            note: String::new(),
        }
    }

    /// Add a row: `cells` in the order of the columns given to [`Report::new`].
    pub fn push(&mut self, meta: &RowMeta, cells: Vec<Value>) {
        assert_eq!(
            cells.len() + HEAD.len() + TAIL.len(),
            self.columns.len(),
            "a row has a cell per column"
        );
        let mut row = vec![
            Value::Text(meta.model.clone()),
            Value::Int(meta.params as u64),
            Value::Text(meta.backend.clone()),
            Value::Text(meta.dtype.clone()),
        ];
        row.extend(cells);
        row.push(Value::Text(env!("OUROBOROS_GIT_COMMIT").to_string()));
        row.push(Value::Text(device_name(&meta.backend)));
        row.push(Value::Text(
            chrono::Utc::now().format("%Y-%m-%d").to_string(),
        ));
        self.rows.push(row);
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Md => self.md(),
            Format::Csv => self.csv(),
            Format::Jsonl => self.jsonl(),
        }
    }

    fn md(&self) -> String {
        let shown: Vec<usize> = (0..self.columns.len())
            .filter(|&i| self.columns[i].title.is_some())
            .collect();
        let mut out = String::new();
        let titles: Vec<&str> = shown
            .iter()
            .filter_map(|&i| self.columns[i].title)
            .collect();
        let _ = writeln!(out, "| {} |", titles.join(" | "));
        let first = self.rows.first();
        let align: Vec<&str> = shown
            .iter()
            .map(|&i| match first.map(|r| &r[i]) {
                Some(Value::Text(_)) | None => "---",
                _ => "---:",
            })
            .collect();
        let _ = writeln!(out, "|{}|", align.join("|"));
        for row in &self.rows {
            let cells: Vec<String> = shown
                .iter()
                .map(|&i| match &row[i] {
                    Value::Text(t) => t.clone(),
                    Value::Int(n) => n.to_string(),
                    Value::Num(x, d) => format!("{x:.d$}"),
                    Value::MeanSd(m, s, d) => format!("{m:.d$} ± {s:.d$}"),
                })
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        if let Some(row) = first {
            let text = |key: &str| {
                self.columns
                    .iter()
                    .position(|c| c.key == key)
                    .and_then(|i| match &row[i] {
                        Value::Text(t) => Some(t.clone()),
                        _ => None,
                    })
                    .unwrap_or_default()
            };
            let _ = write!(
                out,
                "\ncommit {} · {} · {}",
                text("commit"),
                text("device_name"),
                text("date")
            );
            if !self.note.is_empty() {
                let _ = write!(out, " · {}", self.note);
            }
            out.push('\n');
        }
        out
    }

    /// The csv/jsonl keys, a mean ± sd column split in two.
    fn keys(&self) -> Vec<String> {
        let sample = self.rows.first();
        let mut keys = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            match sample.map(|r| &r[i]) {
                Some(Value::MeanSd(..)) => {
                    keys.push(format!("{}_mean", c.key));
                    keys.push(format!("{}_sd", c.key));
                }
                _ => keys.push(c.key.to_string()),
            }
        }
        keys
    }

    fn csv(&self) -> String {
        let mut out = self.keys().join(",");
        out.push('\n');
        for row in &self.rows {
            let mut cells = Vec::new();
            for v in row {
                match v {
                    Value::Text(t) if t.contains([',', '"', '\n']) => {
                        cells.push(format!("\"{}\"", t.replace('"', "\"\"")));
                    }
                    Value::Text(t) => cells.push(t.clone()),
                    Value::Int(n) => cells.push(n.to_string()),
                    Value::Num(x, d) => cells.push(format!("{x:.d$}", d = d + 2)),
                    Value::MeanSd(m, s, d) => {
                        cells.push(format!("{m:.d$}", d = d + 2));
                        cells.push(format!("{s:.d$}", d = d + 2));
                    }
                }
            }
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    fn jsonl(&self) -> String {
        let keys = self.keys();
        let mut out = String::new();
        for row in &self.rows {
            let mut pairs: Vec<String> = Vec::new();
            let mut k = keys.iter();
            let mut put = |key: Option<&String>, v: serde_json::Value| {
                let key = key.expect("one key per value");
                pairs.push(format!("{}:{v}", serde_json::Value::String(key.clone())));
            };
            for v in row {
                match v {
                    Value::Text(t) => put(k.next(), serde_json::json!(t)),
                    Value::Int(n) => put(k.next(), serde_json::json!(n)),
                    Value::Num(x, _) => put(k.next(), serde_json::json!(x)),
                    Value::MeanSd(m, s, _) => {
                        put(k.next(), serde_json::json!(m));
                        put(k.next(), serde_json::json!(s));
                    }
                }
            }
            let _ = writeln!(out, "{{{}}}", pairs.join(","));
        }
        out
    }
}

pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n.max(1.0);
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// The processor's name on the CPU (from /proc/cpuinfo), else the backend.
fn device_name(backend: &str) -> String {
    if backend != "cpu" {
        return backend.to_string();
    }
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "cpu".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut r = Report::new(&[col("steps", "steps"), col("tok_s", "tok/s"), data("reps")]);
        let meta = RowMeta {
            model: "m, quoted".into(),
            params: 7,
            backend: "cpu".into(),
            dtype: "f32".into(),
        };
        r.push(
            &meta,
            vec![4usize.into(), Value::MeanSd(10.0, 0.5, 1), 3usize.into()],
        );
        r
    }

    #[test]
    fn csv_and_jsonl_share_keys_and_md_shows_titles() {
        let r = report();
        let csv = r.render(Format::Csv);
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let row: serde_json::Value =
            serde_json::from_str(r.render(Format::Jsonl).lines().next().unwrap()).unwrap();
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut sorted = header.clone();
        sorted.sort();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort();
        assert_eq!(sorted, sorted_keys);
        assert!(header.contains(&"tok_s_mean") && header.contains(&"tok_s_sd"));
        assert_eq!(row["steps"], 4);
        assert_eq!(row["model"], "m, quoted");
        assert!(csv.lines().nth(1).unwrap().starts_with("\"m, quoted\",7,"));
        let md = r.render(Format::Md);
        assert!(
            md.starts_with("| model | params | backend | dtype | steps | tok/s |"),
            "{md}"
        );
        assert!(md.contains("| 10.0 ± 0.5 |"), "{md}");
        assert!(!md.lines().next().unwrap().contains("reps"));
    }
}
