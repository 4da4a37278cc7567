//! Raw declarations mirroring `csrc/shim.h`. Nothing here is called from
//! outside this crate; `engine.rs` is the safe face.
#![allow(non_camel_case_types)]

use libc::{c_char, c_int, c_long, c_void, size_t, ssize_t};

#[repr(C)]
pub struct corral_param {
    pub name: *const c_char,
    pub name_len: size_t,
    pub value: *const c_char,
    pub value_len: size_t,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct corral_io {
    pub ctx: *mut c_void,
    pub read_body: extern "C" fn(*mut c_void, *mut c_char, size_t) -> ssize_t,
    pub write_out: extern "C" fn(*mut c_void, *const c_char, size_t) -> c_int,
    pub flush: extern "C" fn(*mut c_void) -> c_int,
    pub finish: extern "C" fn(*mut c_void) -> c_int,
    pub log: extern "C" fn(*mut c_void, c_int, *const c_char, size_t, c_int),
    pub status: extern "C" fn(*mut c_void, *mut c_char, size_t) -> size_t,
}

#[repr(C)]
pub struct corral_request {
    pub params: *const corral_param,
    pub n_params: size_t,
    pub request_method: *const c_char,
    pub query_string: *const c_char,
    pub request_uri: *const c_char,
    pub path_translated: *const c_char,
    pub content_type: *const c_char,
    pub content_length: c_long,
    pub deny_extension: c_int,
    pub want_opcache: c_int,
    pub io: corral_io,
    pub status: c_int,
    pub recycle: c_int,
    pub peak_memory: size_t,
    pub script_ran: c_int,
    pub opcache_ok: c_int,
    pub opcache: [u64; OPCACHE_FIELDS],
}

/// `CORRAL_OPCACHE_FIELDS` in shim.h.
pub const OPCACHE_FIELDS: usize = 6;

#[repr(C)]
pub struct corral_startup {
    pub ini_path_override: *const c_char,
    pub ini_ignore: c_int,
    pub defines: *const *const c_char,
    pub executable: *const c_char,
    pub io: corral_io,
}

extern "C" {
    pub fn corral_php_startup(s: *const corral_startup) -> c_int;
    pub fn corral_php_apply_pool_ini(
        name: *const c_char,
        value: *const c_char,
        admin: c_int,
    ) -> c_int;
    pub fn corral_php_child_init();
    pub fn corral_php_run(r: *mut corral_request) -> c_int;
    pub fn corral_php_print_version() -> c_int;
    pub fn corral_php_print_modules() -> c_int;
    pub fn corral_php_print_info() -> c_int;
    pub fn corral_php_ini_string(name: *const c_char) -> *const c_char;
    pub fn corral_php_powered_by() -> *const c_char;
    pub fn corral_php_extended_info();
    pub fn corral_php_trace_layout(out: *mut u64);
    pub fn corral_php_path_resolves(path: *const c_char) -> c_int;
}

/// Entries written by `corral_php_trace_layout`.
pub const TRACE_FIELDS: usize = 18;
