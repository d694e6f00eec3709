//! Links the HMS Lifecycle C library's static archive (`libhms_lifecycle.a`).
//!
//! - `HMS_LIB_DIR` set: use the prebuilt archive in that directory (`make lib` puts one in
//!   `build/lib/` at the repository root).
//! - otherwise: build it with the Go toolchain (`go build -buildmode=c-archive ./capi`, `GO`
//!   names another `go`) from the repository this crate sits in, into `OUT_DIR`.
//! - `DOCS_RS` or `HMS_SKIP_GO_BUILD` set: neither (documentation builds need no library).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    for var in ["HMS_LIB_DIR", "HMS_SKIP_GO_BUILD", "DOCS_RS", "GO"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    if env::var_os("DOCS_RS").is_some() || env::var_os("HMS_SKIP_GO_BUILD").is_some() {
        return;
    }
    let dir = match env::var_os("HMS_LIB_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let archive = dir.join("libhms_lifecycle.a");
            if !archive.exists() {
                panic!("HMS_LIB_DIR: {} does not exist (run `make lib` at the repository root)", archive.display());
            }
            println!("cargo:rerun-if-changed={}", archive.display());
            dir
        }
        None => build_with_go(),
    };
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=hms_lifecycle");
    for lib in ["pthread", "dl", "m", "resolv"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    println!("cargo:lib_dir={}", dir.display());
}

/// Builds the archive from the repository root (three levels above this crate).
fn build_with_go() -> PathBuf {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../../..");
    if !root.join("capi/hms_lifecycle.h").exists() || !root.join("go.mod").exists() {
        panic!(
            "hms-agent-sys: {} is not the HMS Lifecycle repository; set HMS_LIB_DIR to a directory holding libhms_lifecycle.a",
            root.display()
        );
    }
    let root = root.canonicalize().expect("repository root");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let go = env::var_os("GO").unwrap_or_else(|| "go".into());
    let status = Command::new(&go)
        .current_dir(&root)
        .env("CGO_ENABLED", "1")
        .args(["build", "-buildmode=c-archive", "-o"])
        .arg(out.join("libhms_lifecycle.a"))
        .arg("./capi")
        .status()
        .unwrap_or_else(|e| panic!("hms-agent-sys: running {go:?} (the Go toolchain, needed to build the library unless HMS_LIB_DIR is set): {e}"));
    if !status.success() {
        panic!("hms-agent-sys: go build -buildmode=c-archive ./capi failed: {status}");
    }
    watch_go_sources(&root, &root);
    out
}

/// Emits rerun-if-changed for the Go sources the archive is built from.
fn watch_go_sources(root: &Path, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            let skip = name.starts_with('.')
                || ["bindings", "build", "testdata", "node_modules", "target", "docs", "hms-data"]
                    .contains(&name.as_ref());
            if !skip {
                watch_go_sources(root, &path);
            }
        } else if name.ends_with(".go") && !name.ends_with("_test.go")
            || name.ends_with(".c")
            || name.ends_with(".h")
            || (dir == root && (name == "go.mod" || name == "go.sum"))
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
