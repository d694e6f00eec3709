//! Test helpers: the repository's paths, a real server started per test, temporary folders
//! removed when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..").canonicalize().unwrap()
}

/// The server binary: HMS_SERVER_BIN, or built once with `go build`.
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(b) = std::env::var_os("HMS_SERVER_BIN") {
            return PathBuf::from(b);
        }
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/hms-server/hms-lifecycle");
        let go = std::env::var_os("GO").unwrap_or_else(|| "go".into());
        let status = Command::new(go)
            .current_dir(repo())
            .args(["build", "-o"])
            .arg(&out)
            .arg("./cmd/hms-lifecycle")
            .status()
            .expect("running go build for the server");
        assert!(status.success(), "go build ./cmd/hms-lifecycle failed");
        out
    })
    .clone()
}

/// A server on the memory store, stopped (SIGTERM, then waited for) when dropped.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    pub fn start(plugin_repo: Option<&Path>) -> Server {
        let mut cmd = Command::new(server_bin());
        cmd.args(["serve", "--store", "memory", "--listen", "127.0.0.1:0"]);
        if let Some(r) = plugin_repo {
            cmd.arg("--plugin-repo").arg(r);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("starting the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("server said {line:?}")).to_string();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let _ = self.child.wait();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// A temporary folder, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "hms-rust-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// A copy of `src`'s files (one level of folders, as the plugin repository has).
    pub fn copy_of(tag: &str, src: &Path) -> TempDir {
        let t = TempDir::new(tag);
        copy_dir(src, &t.0);
        t
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
