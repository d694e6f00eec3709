//! Generates the protobuf messages of `proto/` (at the repository root) with prost, compiling
//! the schema in pure Rust with protox (no `protoc` needed).

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let proto = manifest.join("../../../proto");
    let files = ["hms/agent/lifecycle/v1/lifecycle_manager.proto", "hms/plugin/lifecycle/v1/plugin_lifecycle.proto"];
    println!("cargo:rerun-if-changed={}", proto.display());
    let fds = protox::compile(files, [&proto]).unwrap_or_else(|e| panic!("compiling {}: {e}", proto.display()));
    let mut config = prost_build::Config::new();
    config.compile_fds(fds).expect("prost-build");
}
