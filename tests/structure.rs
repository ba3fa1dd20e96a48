//! The shape of `src/`, checked like behaviour: arrows between top-level modules never form a
//! circle, only the store names sled, only the demo names the simulated SDP, only the ticket
//! commands and the store run ticket transactions, and no file grows past what a reader can hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest file under `src/`, in lines.
const MAX_LINES: usize = 600;

fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source is UTF-8");
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(out.len() > 20, "the sources are found");
    out
}

/// The top-level module a file belongs to (`src/sync/inbound/mod.rs` → `sync`); `None` for the
/// crate roots.
fn module_of(path: &Path) -> Option<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rel = path.strip_prefix(&src).expect("under src");
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// Code without comments, so a path named in prose is not an arrow.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::<module>` a file names (in `use` lines and inline paths, `crate::{a, b}` too).
fn arrows(text: &str) -> BTreeSet<String> {
    let code = code(text);
    let mut out = BTreeSet::new();
    for piece in code.split("crate::").skip(1) {
        let names: Vec<&str> = if let Some(group) = piece.strip_prefix('{') {
            group
                .split('}')
                .next()
                .unwrap_or_default()
                .split(',')
                .collect()
        } else {
            vec![piece]
        };
        for name in names {
            let ident: String = name
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                out.insert(ident);
            }
        }
    }
    out
}

#[test]
fn top_level_modules_form_no_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources() {
        let Some(from) = module_of(&path) else {
            continue;
        };
        let to = graph.entry(from.clone()).or_default();
        to.extend(arrows(&text).into_iter().filter(|m| *m != from));
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for edges in graph.values_mut() {
        edges.retain(|m| modules.contains(m));
    }
    if let Some(circle) = circle(&graph) {
        let edges: Vec<String> = graph
            .iter()
            .map(|(from, to)| format!("{from} -> {to:?}"))
            .collect();
        panic!(
            "top-level modules form a circle: {}\n{}",
            circle.join(" -> "),
            edges.join("\n")
        );
    }
}

/// A circle in the graph, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth-first search; a grey node met again closes a circle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        path.push(node.to_owned());
        for next in &graph[node] {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|n| n == next).expect("on the path");
                    let mut circle = path[start..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                0 => {
                    if let Some(circle) = visit(next, graph, state, path) {
                        return Some(circle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0
            && let Some(circle) = visit(node, graph, &mut state, &mut Vec::new())
        {
            return Some(circle);
        }
    }
    None
}

#[test]
fn the_cycle_check_finds_a_circle() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            g.entry((*from).to_owned())
                .or_default()
                .insert((*to).to_owned());
            g.entry((*to).to_owned()).or_default();
        }
        g
    };
    assert_eq!(circle(&graph(&[("app", "http"), ("http", "store")])), None);
    let found =
        circle(&graph(&[("app", "http"), ("http", "web"), ("web", "app")])).expect("a circle");
    assert_eq!(found.first(), found.last());
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(
        arrows("use crate::{a, b::c};\nlet x = crate::d::e(); // crate::f"),
        ["a", "b", "d"].map(str::to_owned).into_iter().collect()
    );
}

#[test]
fn only_the_store_names_sled() {
    for (path, text) in sources() {
        if module_of(&path).as_deref() == Some("store") {
            continue;
        }
        assert!(
            !code(&text).contains("sled"),
            "{} names sled; only src/store may",
            path.display()
        );
    }
}

#[test]
fn only_the_demo_names_the_simulated_sdp() {
    // `serve` must never reach the simulator: only `deskbridge demo` (src/demo) starts it.
    for (path, text) in sources() {
        if module_of(&path).as_deref() == Some("demo") {
            continue;
        }
        assert!(
            !code(&text).contains("fake_sdp"),
            "{} names fake_sdp; only src/demo may",
            path.display()
        );
    }
}

#[test]
fn only_the_ticket_commands_and_the_store_run_ticket_transactions() {
    for (path, text) in sources() {
        if matches!(module_of(&path).as_deref(), Some("store" | "tickets")) {
            continue;
        }
        let code = code(&text);
        for call in [".transact(", "TicketTx", "trees."] {
            assert!(
                !code.contains(call),
                "{} uses {call}; ticket changes go through src/tickets",
                path.display()
            );
        }
    }
}

#[test]
fn no_source_file_is_longer_than_it_should_be() {
    for (path, text) in sources() {
        let lines = text.lines().count();
        assert!(
            lines <= MAX_LINES,
            "{} has {lines} lines (at most {MAX_LINES})",
            path.display()
        );
    }
}
