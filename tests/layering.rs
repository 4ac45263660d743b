//! No crate of the workspace has a cycle among its top-level modules (`src/NAME.rs` or
//! `src/NAME/mod.rs`): module A depends on B when a file of A mentions `crate::B`. Cycles make a
//! crate hard to read bottom-up and to split, so each is named with its crate.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// Module -> the modules it mentions.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The `members = [...]` list of the workspace's manifest.
fn members(root: &Path) -> Vec<String> {
    let manifest = fs::read_to_string(root.join("Cargo.toml")).expect("the workspace's Cargo.toml");
    let manifest: String = manifest.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let (_, rest) = manifest.split_once("members").expect("a members list");
    let list = rest.split_once('[').and_then(|(_, r)| r.split_once(']')).expect("members = [...]").0;
    list.split(',').map(|m| m.trim().trim_matches('"').to_string()).filter(|m| !m.is_empty()).collect()
}

fn rs_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rs_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The crate's top-level modules and their files (all of a folder module's).
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && path.join("mod.rs").exists() {
            modules.insert(name, rs_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            modules.insert(name, vec![path]);
        }
    }
    modules
}

/// First path segments after each `crate::` in `code`: `crate::x::y` gives `x`, and
/// `crate::{x, y::{z}}` gives `x` and `y`. `//` comments (doc comments too) are skipped.
fn mentions(code: &str) -> BTreeSet<String> {
    let code: String = code.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            heads(&code[at + "crate::".len()..], &mut names);
        }
    }
    names
}

/// The first segment of the path `s` starts with, or of each path of the `{...}` group it starts with.
fn heads(s: &str, names: &mut BTreeSet<String>) {
    let s = s.trim_start();
    let Some(group) = s.strip_prefix('{') else {
        let name: String = s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            names.insert(name);
        }
        return;
    };
    let (mut depth, mut item) = (0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return heads(&group[item..i], names),
            '}' => depth -= 1,
            ',' if depth == 0 => {
                heads(&group[item..i], names);
                item = i + 1;
            }
            _ => {}
        }
    }
}

fn graph(src: &Path) -> Graph {
    let modules = modules(src);
    let mut graph = Graph::new();
    for (name, files) in &modules {
        let code: String = files.iter().map(|f| fs::read_to_string(f).unwrap()).collect::<Vec<_>>().join("\n");
        let deps = mentions(&code).into_iter().filter(|d| d != name && modules.contains_key(d)).collect();
        graph.insert(name.clone(), deps);
    }
    graph
}

fn reachable<'a>(graph: &'a Graph, from: &'a str) -> BTreeSet<&'a str> {
    let (mut seen, mut todo) = (BTreeSet::new(), vec![from]);
    while let Some(m) = todo.pop() {
        for d in graph.get(m).into_iter().flatten() {
            if seen.insert(d.as_str()) {
                todo.push(d);
            }
        }
    }
    seen
}

/// One cycle per strongly connected component of more than one module, as `a -> b -> a`
/// (the shortest through the component's first module; the others of it are named after it).
fn cycles(graph: &Graph) -> Vec<String> {
    let reach: BTreeMap<&str, BTreeSet<&str>> = graph.keys().map(|m| (m.as_str(), reachable(graph, m))).collect();
    let mut components = BTreeSet::new();
    for (m, r) in &reach {
        let component: BTreeSet<&str> = r.iter().copied().filter(|o| reach[o].contains(m)).collect();
        if component.len() > 1 {
            components.insert(component);
        }
    }
    let mut found = Vec::new();
    for component in components {
        let start = *component.first().unwrap();
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut todo = VecDeque::from([start]);
        while let Some(m) = todo.pop_front() {
            for d in graph[m].iter().map(String::as_str).filter(|d| component.contains(d)) {
                if !came_from.contains_key(d) {
                    came_from.insert(d, m);
                    todo.push_back(d);
                }
            }
        }
        let mut path = vec![start];
        while path.len() == 1 || *path.last().unwrap() != start {
            path.push(came_from[path.last().unwrap()]);
        }
        path.reverse();
        let mut cycle = path.join(" -> ");
        let others: Vec<&str> = component.iter().copied().filter(|m| !path.contains(m)).collect();
        if !others.is_empty() {
            cycle += &format!(" (tangled with it: {})", others.join(", "));
        }
        found.push(cycle);
    }
    found
}

#[test]
fn no_crate_has_a_module_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for member in members(&root) {
        let src = root.join(&member).join("src");
        if src.is_dir() {
            found.extend(cycles(&graph(&src)).into_iter().map(|c| format!("{member}: {c}")));
        }
    }
    assert!(found.is_empty(), "module cycles (move the misplaced item down a layer):\n{}", found.join("\n"));
}

#[test]
fn the_checker_reads_paths_and_finds_only_cycles() {
    let code = "use crate::{a, b::{c, d}};\n// crate::comment\nfn f() -> crate::Error { my_crate::x(); crate::e::f() }";
    let expected = ["Error", "a", "b", "e"];
    assert_eq!(mentions(code), expected.map(String::from).into());
    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    let tangled = graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("b", "a"), ("d", "a"), ("e", "f")]);
    assert_eq!(cycles(&tangled), ["a -> b -> a (tangled with it: c)"]);
    assert_eq!(cycles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), Vec::<String>::new());
}
