//! ARCHITECTURE.md's rule that the modules of each crate depend one way:
//! `scripts/module_cycles.py` finds import cycles between modules (crate
//! boundaries are Cargo's to enforce).

use std::path::Path;
use std::process::Command;

#[test]
fn no_module_depends_on_itself_through_others() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("python3")
        .arg(root.join("scripts/module_cycles.py"))
        .current_dir(&root)
        .output()
        .expect("python3 runs scripts/module_cycles.py");
    assert!(
        out.status.success(),
        "module cycles:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
