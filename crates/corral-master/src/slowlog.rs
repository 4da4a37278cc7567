//! The slow log: the PHP stack of a busy worker, read by the master from the
//! worker's memory (process_vm_readv) the way php-fpm reads it with ptrace.
//!
//! Every address comes from the tenant's process, so every read is bounded:
//! at most `depth` frames, strings capped, and a failed read ends the walk.
//! Nothing read is ever dereferenced in the master's own memory.

use std::io::Write;
use std::path::Path;

/// Addresses and offsets reported by the prototype (see the shim's
/// `corral_php_trace_layout`), in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub executor_globals: u64,
    pub sapi_globals: u64,
    pub eg_current_execute_data: u64,
    pub sg_path_translated: u64,
    pub ed_opline: u64,
    pub ed_func: u64,
    pub ed_this_type_info: u64,
    pub ed_prev: u64,
    pub fn_type: u64,
    pub fn_name: u64,
    pub op_filename: u64,
    pub op_lineno: u64,
    pub str_len: u64,
    pub str_val: u64,
    pub call_kind_mask: u64,
    pub call_top_code: u64,
    pub call_nested_code: u64,
}

impl Layout {
    pub fn from_words(w: &[u64]) -> Option<Layout> {
        // Offsets are small; anything else is not a layout we understand.
        if w.len() != 18 || w[17] != 1 || w[2..14].iter().any(|&o| o > 4096) {
            return None;
        }
        Some(Layout {
            executor_globals: w[0],
            sapi_globals: w[1],
            eg_current_execute_data: w[2],
            sg_path_translated: w[3],
            ed_opline: w[4],
            ed_func: w[5],
            ed_this_type_info: w[6],
            ed_prev: w[7],
            fn_type: w[8],
            fn_name: w[9],
            op_filename: w[10],
            op_lineno: w[11],
            str_len: w[12],
            str_val: w[13],
            call_kind_mask: w[14],
            call_top_code: w[15],
            call_nested_code: w[16],
        })
    }
}

/// Reads from one process.
struct Remote {
    pid: i32,
}

const MAX_STR: u64 = 1024;

impl Remote {
    fn bytes<const N: usize>(&self, addr: u64) -> Option<[u8; N]> {
        if addr == 0 {
            return None;
        }
        let mut b = [0u8; N];
        match corral_sys::process::read_remote(self.pid, addr, &mut b) {
            Ok(n) if n == N => Some(b),
            _ => None,
        }
    }
    fn u64(&self, addr: u64) -> Option<u64> {
        self.bytes::<8>(addr).map(u64::from_ne_bytes)
    }
    fn u32(&self, addr: u64) -> Option<u32> {
        self.bytes::<4>(addr).map(u32::from_ne_bytes)
    }
    fn u8(&self, addr: u64) -> Option<u8> {
        self.bytes::<1>(addr).map(|b| b[0])
    }
    /// A zend_string at `addr`.
    fn zstr(&self, l: &Layout, addr: u64) -> Option<String> {
        let len = self.u64(addr.checked_add(l.str_len)?)?.min(MAX_STR) as usize;
        let mut buf = vec![0u8; len];
        let n = corral_sys::process::read_remote(self.pid, addr.checked_add(l.str_val)?, &mut buf)
            .ok()?;
        buf.truncate(n);
        Some(printable(&buf))
    }
    /// A NUL-terminated C string at `addr`.
    fn cstr(&self, addr: u64) -> Option<String> {
        let mut buf = vec![0u8; MAX_STR as usize];
        let n = corral_sys::process::read_remote(self.pid, addr, &mut buf).ok()?;
        buf.truncate(n);
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Some(printable(&buf[..end]))
    }
}

/// Non-printable bytes become `?`: the slow log is read by people.
fn printable(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// User code (op arrays) has an even function type in Zend.
fn is_user_code(t: u8) -> bool {
    t & 1 == 0
}

/// The stack of `pid`: the script and one line per frame, as php-fpm writes
/// them. `None` when the memory cannot be read.
pub fn trace(pid: i32, l: &Layout, depth: u32) -> Option<(String, Vec<String>)> {
    let r = Remote { pid };
    let path_ptr = r.u64(l.sapi_globals.checked_add(l.sg_path_translated)?)?;
    let script = if path_ptr == 0 {
        "-".to_string()
    } else {
        r.cstr(path_ptr)?
    };
    let mut frames = Vec::new();
    let mut ex = r.u64(l.executor_globals.checked_add(l.eg_current_execute_data)?)?;
    // php-fpm's walk: print a frame's function, then find the nearest
    // caller running user code and print where it is (so an internal
    // function such as sleep() shows the line that called it); the walk
    // goes on from that caller.
    let mut steps = 0u32;
    while ex != 0 && (frames.len() as u32) < depth && steps < depth.saturating_mul(4) {
        steps += 1;
        let func = r.u64(ex + l.ed_func).unwrap_or(0);
        let mut name = String::from("???");
        if func != 0 {
            let name_ptr = r.u64(func + l.fn_name).unwrap_or(0);
            if name_ptr != 0 {
                name = r.zstr(l, name_ptr).unwrap_or_else(|| "???".into());
            } else {
                let info = r.u32(ex + l.ed_this_type_info).unwrap_or(0) as u64;
                let kind = info & l.call_kind_mask;
                if kind == l.call_top_code {
                    break;
                }
                if kind == l.call_nested_code {
                    name = "[INCLUDE_OR_EVAL]".into();
                }
            }
        }
        let frame_addr = ex;
        let mut file = String::new();
        let mut line = 0u32;
        ex = r.u64(ex + l.ed_prev).unwrap_or(0);
        let mut hops = 0u32;
        while ex != 0 && hops < depth.saturating_mul(4) {
            hops += 1;
            let f = r.u64(ex + l.ed_func).unwrap_or(0);
            if f != 0 && r.u8(f + l.fn_type).is_some_and(is_user_code) {
                if let Some(fname) = r.u64(f + l.op_filename).and_then(|p| r.zstr(l, p)) {
                    file = fname;
                }
                if let Some(op) = r.u64(ex + l.ed_opline).filter(|&o| o != 0) {
                    line = r.u32(op + l.op_lineno).unwrap_or(0);
                }
                break;
            }
            ex = r.u64(ex + l.ed_prev).unwrap_or(0);
        }
        let file = if file.is_empty() {
            "unknown".to_string()
        } else {
            file
        };
        frames.push(format!("[0x{frame_addr:016x}] {name}() {file}:{line}"));
    }
    Some((script, frames))
}

/// Append one entry to the pool's slow log file.
pub fn write_entry(
    path: &Path,
    pool: &str,
    pid: i32,
    entry: Option<(String, Vec<String>)>,
) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let stamp = chrono::Local::now().format("%d-%b-%Y %H:%M:%S");
    let mut text = format!("\n[{stamp}]  [pool {pool}] pid {pid}\n");
    match entry {
        Some((script, frames)) => {
            text.push_str(&format!("script_filename = {script}\n"));
            for f in frames {
                text.push_str(&f);
                text.push('\n');
            }
        }
        None => text.push_str("+++ dump failed\n"),
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_rejects_nonsense() {
        let mut w = vec![0u64; 18];
        assert!(Layout::from_words(&w).is_none(), "version 0");
        w[17] = 1;
        assert!(Layout::from_words(&w).is_some());
        w[5] = 1 << 40;
        assert!(Layout::from_words(&w).is_none(), "offset out of range");
        assert!(Layout::from_words(&w[..10]).is_none());
    }

    #[test]
    fn unreadable_process_gives_none() {
        let mut w = vec![8u64; 18];
        w[0] = 0x10;
        w[1] = 0x10;
        w[17] = 1;
        let l = Layout::from_words(&w).unwrap();
        assert!(trace(i32::MAX - 1, &l, 20).is_none());
    }
}
