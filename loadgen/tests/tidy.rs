//! Style checks as an ordinary test (STYLE.md §7.9): lines within 100 columns, no tabs, no
//! trailing whitespace, in every Rust file of this crate.

use std::path::{Path, PathBuf};

#[test]
fn loadgen_sources_are_tidy() {
    // Goal: STYLE.md §6 line length and whitespace. Method: read every .rs file under src/
    // and tests/ and list every offending line, so one run shows them all.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("src"), &mut files);
    collect(&root.join("tests"), &mut files);
    assert!(files.len() > 10, "found the sources");
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let place = format!("{}:{}", file.display(), number + 1);
            if line.chars().count() > 100 {
                offences.push(format!("{place}: longer than 100 columns"));
            }
            if line.contains('\t') {
                offences.push(format!("{place}: tab"));
            }
            if line.ends_with(' ') {
                offences.push(format!("{place}: trailing whitespace"));
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}
