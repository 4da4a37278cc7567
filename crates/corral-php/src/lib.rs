//! PHP embedded through Debian's libphp8.2, presented as php-fpm presents it.
//!
//! The C shim (`csrc/shim.c`) owns every call into PHP that can longjmp; Rust
//! reaches PHP only through [`Engine`], and PHP reaches Rust only through the
//! leaf I/O callbacks of [`RequestIo`]. This is the only crate that knows Zend
//! and, with `corral-sys`, one of two that contain `unsafe`.

mod engine;
mod ffi;

pub use engine::{
    Engine, EngineError, LogLevel, LogOnly, OpcacheNumbers, Outcome, RequestIo, RequestSpec,
    StartOptions,
};
