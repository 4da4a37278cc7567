//! POSIX ACLs as the kernel stores them (`system.posix_acl_access` and
//! `system.posix_acl_default` xattrs), for work on open files where
//! `setfacl` would take a path: a tree a tenant can change under us is
//! walked by file descriptor, never by path (see [`relock`](crate::relock)).
//!
//! The format: a little-endian `u32` version (2), then one 8-byte entry
//! per ACL entry (`u16` tag, `u16` permission bits, `u32` id), sorted by
//! tag and then id, as libacl writes it.

/// The xattr of a file's access ACL.
pub const ACCESS: &str = "system.posix_acl_access";
/// The xattr of a directory's default ACL.
pub const DEFAULT: &str = "system.posix_acl_default";

const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
const NO_ID: u32 = u32::MAX;

/// An ACL split into its access and default parts, each in xattr form;
/// `None` for an access ACL that the mode alone expresses (the kernel
/// keeps no xattr for it) and for no default ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub access: Option<Vec<u8>>,
    pub default: Option<Vec<u8>>,
}

/// Encodes `setfacl --set` text with numeric ids (`u::rwx,u:33:r-x,m::r-x,
/// d:u::rwx,...`). `Err` names the entry that is not understood.
pub fn encode(spec: &str) -> Result<Encoded, String> {
    let mut access = Vec::new();
    let mut default = Vec::new();
    for raw in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (list, e) = match raw.strip_prefix("d:") {
            Some(r) => (&mut default, r),
            None => (&mut access, raw),
        };
        let mut parts = e.splitn(3, ':');
        let (tag, qual, perm) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts
                .next()
                .ok_or_else(|| format!("ACL entry '{raw}' has no permissions"))?,
        );
        let id = if qual.is_empty() {
            NO_ID
        } else {
            qual.parse::<u32>()
                .map_err(|_| format!("ACL entry '{raw}': '{qual}' is not a numeric id"))?
        };
        let tag = match (tag, id == NO_ID) {
            ("u", true) => USER_OBJ,
            ("u", false) => USER,
            ("g", true) => GROUP_OBJ,
            ("g", false) => GROUP,
            ("m", true) => MASK,
            ("o", true) => OTHER,
            _ => return Err(format!("ACL entry '{raw}' is not understood")),
        };
        list.push((
            tag,
            perm_bits(perm).ok_or_else(|| format!("bad permissions in '{raw}'"))?,
            id,
        ));
    }
    let minimal = access
        .iter()
        .all(|(t, _, _)| matches!(*t, USER_OBJ | GROUP_OBJ | OTHER));
    Ok(Encoded {
        access: (!minimal).then(|| to_bytes(access)),
        default: (!default.is_empty()).then(|| to_bytes(default)),
    })
}

fn perm_bits(p: &str) -> Option<u16> {
    let b = p.as_bytes();
    if b.len() != 3 {
        return None;
    }
    let bit = |c: u8, want: u8, v: u16| match c {
        c if c == want => Some(v),
        b'-' => Some(0),
        _ => None,
    };
    Some(bit(b[0], b'r', 4)? | bit(b[1], b'w', 2)? | bit(b[2], b'x', 1)?)
}

fn to_bytes(mut entries: Vec<(u16, u16, u32)>) -> Vec<u8> {
    entries.sort_by_key(|(t, _, id)| (*t, *id));
    let mut out = VERSION.to_le_bytes().to_vec();
    for (t, p, id) in entries {
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&p.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_acls_need_no_xattr() {
        let e = encode("u::rw-,g::r--,o::---").unwrap();
        assert_eq!(
            e,
            Encoded {
                access: None,
                default: None
            }
        );
    }

    #[test]
    fn named_entries_are_sorted_and_encoded() {
        let e = encode("u::rwx,g::r-x,o::---,u:33:r-x,m::r-x,d:u::rwx,d:g::r-x,d:o::---").unwrap();
        let a = e.access.unwrap();
        assert_eq!(&a[..4], &[2, 0, 0, 0]);
        // USER_OBJ rwx, USER 33 r-x, GROUP_OBJ r-x, MASK r-x, OTHER ---.
        let tags: Vec<u16> = a[4..]
            .chunks(8)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(tags, [0x01, 0x02, 0x04, 0x10, 0x20]);
        assert_eq!(&a[12..20], &[0x02, 0, 5, 0, 33, 0, 0, 0]);
        assert_eq!(e.default.unwrap().len(), 4 + 3 * 8);
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(encode("u:www-data:r--").is_err());
        assert!(encode("u::rwz").is_err());
        assert!(encode("q::rwx").is_err());
    }
}
