//! Builds the C SAPI shim and links libphp8.2.
//!
//! Debian's `libphp8.2.so` carries the SONAME `libphp.so`, a name no package
//! ships. Linking it directly would record `NEEDED libphp.so` and the binary
//! would not start on a clean machine. We link against a copy whose SONAME is
//! rewritten to `libphp8.2.so` (the file that does exist), so the recorded
//! dependency is the real file name.
use std::path::{Path, PathBuf};
use std::process::Command;

const LIB_DIRS: &[&str] = &[
    "/usr/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
];
const LIB_NAME: &str = "libphp8.2.so";

fn php_includes() -> Vec<PathBuf> {
    let out = Command::new("php-config8.2")
        .arg("--includes")
        .output()
        .or_else(|_| Command::new("php-config").arg("--includes").output())
        .expect("php-config8.2 not found: install php8.2-dev (scripts/setup.sh does)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("-I"))
        .map(PathBuf::from)
        .collect()
}

fn find_lib() -> PathBuf {
    LIB_DIRS
        .iter()
        .map(|d| Path::new(d).join(LIB_NAME))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{LIB_NAME} not found: install libphp8.2-embed (scripts/setup.sh does)")
        })
}

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/shim.h");

    let mut build = cc::Build::new();
    build
        .file("csrc/shim.c")
        .warnings(true)
        .flag_if_supported("-Wno-unused-parameter");
    for inc in php_includes() {
        build.include(inc);
    }
    build.compile("corral_shim");

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let lib = find_lib();
    let copy = out.join(LIB_NAME);
    std::fs::copy(&lib, &copy).expect("copy libphp");
    let status = Command::new("patchelf")
        .arg("--set-soname")
        .arg(LIB_NAME)
        .arg(&copy)
        .status()
        .expect("patchelf not found: install patchelf (scripts/setup.sh does)");
    assert!(status.success(), "patchelf --set-soname failed");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=dylib=php8.2");
    println!("cargo:rerun-if-changed={}", lib.display());
}
