//! `corral.allow_functions`: the one knob that re-enables functions the
//! template disables. The shipped templates disable, besides shell
//! execution, the functions that let a hostile tenant step outside its
//! pool:
//! * `putenv` (with `mail`, which runs `/bin/sh -c sendmail`, it sets
//!   `LD_PRELOAD` and runs the tenant's shared object as native code);
//! * `mail` and `mb_send_mail` (they start a shell);
//! * SysV shared memory, semaphores and message queues, and shmop: their
//!   objects outlive the request and, without an IPC namespace, are shared
//!   by every tenant on the host.
//!
//! A site that needs one says so (`corral.allow_functions = mail`), and the
//! name is taken out of `disable_functions`; nothing else changes it.

/// Named groups, so an operator need not know every SysV function.
const GROUPS: &[(&str, &[&str])] = &[
    ("mail", &["mail", "mb_send_mail"]),
    ("putenv", &["putenv"]),
    (
        "sysv",
        &[
            "shm_attach",
            "shm_detach",
            "shm_has_var",
            "shm_remove",
            "shm_put_var",
            "shm_get_var",
            "shm_remove_var",
            "sem_get",
            "sem_acquire",
            "sem_release",
            "sem_remove",
            "msg_get_queue",
            "msg_send",
            "msg_receive",
            "msg_remove_queue",
            "msg_stat_queue",
            "msg_set_queue",
            "msg_queue_exists",
        ],
    ),
    (
        "shmop",
        &[
            "shmop_open",
            "shmop_read",
            "shmop_close",
            "shmop_size",
            "shmop_write",
            "shmop_delete",
        ],
    ),
];

/// The group names, for messages and docs.
pub fn group_names() -> Vec<&'static str> {
    GROUPS.iter().map(|(g, _)| *g).collect()
}

/// `disabled` (php's comma-separated `disable_functions`) without what
/// `allow` (space- or comma-separated group or function names) enables.
/// A name that is neither a group nor a disabled function is an error:
/// a typo must not read as "allowed".
pub fn allow(disabled: &str, allow: &str) -> Result<String, String> {
    let mut list: Vec<String> = disabled
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    for name in allow.split([' ', ',']).filter(|n| !n.is_empty()) {
        let members: Vec<&str> = match GROUPS.iter().find(|(g, _)| *g == name) {
            Some((_, fs)) => fs.to_vec(),
            None if list.iter().any(|f| f.eq_ignore_ascii_case(name)) => vec![name],
            None => {
                return Err(format!(
                    "'{name}' is neither a group ({}) nor a function in disable_functions",
                    group_names().join(", ")
                ))
            }
        };
        list.retain(|f| !members.iter().any(|m| m.eq_ignore_ascii_case(f)));
    }
    Ok(list.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISABLED: &str = "exec,system,putenv,mail,mb_send_mail,shm_attach,sem_get,shmop_open";

    #[test]
    fn groups_and_names_are_taken_out() {
        assert_eq!(
            allow(DISABLED, "mail putenv").unwrap(),
            "exec,system,shm_attach,sem_get,shmop_open"
        );
        assert_eq!(
            allow(DISABLED, "sysv,shmop").unwrap(),
            "exec,system,putenv,mail,mb_send_mail"
        );
        assert_eq!(
            allow(DISABLED, "exec").unwrap(),
            "system,putenv,mail,mb_send_mail,shm_attach,sem_get,shmop_open"
        );
        assert_eq!(allow(DISABLED, "").unwrap(), DISABLED);
    }

    #[test]
    fn unknown_names_are_refused() {
        let e = allow(DISABLED, "mial").unwrap_err();
        assert!(e.contains("'mial'") && e.contains("sysv"), "{e}");
    }
}
