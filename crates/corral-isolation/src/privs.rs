//! `no_new_privs`: from here on, execve(2) can never grant more than the
//! caller has (set-user-ID, set-group-ID and file capabilities are
//! ignored). Landlock requires it of an unprivileged process, so every
//! pool with `corral.landlock` gets it, after the privilege drop.
//!
//! It is not set for other pools: php-fpm does not set it, and a pool
//! whose mail() goes through a set-id sendmail (Postfix's setgid
//! `postdrop`, Exim's setuid binary) would lose its mail, so a
//! configuration without `corral.*` must keep working as before. A
//! Landlock pool needs a sendmail that is not set-id (msmtp, or SMTP from
//! PHP).

use crate::Report;

/// Sets it, or says why it could not be set.
pub fn no_new_privs(report: &mut Report) {
    match corral_sys::nix::sys::prctl::set_no_new_privs() {
        Ok(()) => report.applied("no_new_privs"),
        Err(e) => report.lacking(format!("no_new_privs: {e}")),
    }
}
