//! Golden tests: each broken configuration in `data/broken/*.conf` is reported exactly
//! as its `.expected` file says (every error, with file, line, column, the line and a
//! caret). `UPDATE_GOLDEN=1 cargo test -p lb-config --test golden` rewrites them.

use std::path::Path;

fn render(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("the test file is readable");
    let name = format!(
        "broken/{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    );
    match lb_config::parse_str(&name, &text, &[]) {
        Ok(parsed) => format!("unexpectedly OK\n{}", parsed.report.render()),
        Err(report) => report.render(),
    }
}

#[test]
fn broken_configurations_give_their_exact_messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/broken exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "the golden set is there: {files:?}");
    let mut failures = Vec::new();
    for conf in files {
        let got = render(&conf);
        let expected_path = conf.with_extension("expected");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&expected_path, &got).expect("writable");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!(
                "{}:\n--- expected\n{expected}\n--- got\n{got}",
                conf.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
