//! Files outside the site that keep it healthy over time: the host's
//! session-cleanup cron file and each site's logrotate file. Both are
//! written by `site add`/`set` inside the transaction and removed by
//! `site remove` (the cron file with the last site).

use std::path::{Path, PathBuf};

use crate::fs_layout::Layout;
use crate::paths::Paths;
use crate::spec::SiteSpec;

/// `<cron-dir>/corral-sites`.
pub fn cron_file(paths: &Paths) -> PathBuf {
    paths.cron_dir.join("corral-sites")
}

/// `<logrotate-dir>/corral-site-DOMAIN`.
pub fn logrotate_file(paths: &Paths, domain: &str) -> PathBuf {
    paths.logrotate_dir.join(format!("corral-site-{domain}"))
}

/// Twice an hour, at Debian's own sessionclean minutes, as root (it reads
/// every site's registry entry; see [`sessions`](crate::sessions) for why
/// root is safe there). The host knobs it needs are spelled out, so the job
/// cleans the sites this command provisioned.
pub fn cron_text(paths: &Paths, exe: &Path) -> String {
    let exe = exe.display();
    let knob = |flag: &str, p: &Path| format!(" --{flag} {}", p.display());
    let mut args = String::new();
    args.push_str(&knob("state-dir", &paths.state_dir));
    args.push_str(&knob("home-base", &paths.home_base));
    args.push_str(&knob("template-dir", &paths.template_dir));
    if let Some(d) = &paths.php_ini_dir {
        args.push_str(&knob("php-ini-dir", d));
    }
    let mut lock_args = String::new();
    for (flag, v) in paths.change_knobs() {
        lock_args.push_str(&format!(" --{flag} {}", sh_quote(&v)));
    }
    format!(
        "# Managed by `corral site`: removes each site's session files older than its\n\
         # pool's session.gc_maxlifetime. Debian's own job (phpsessionclean) cleans only\n\
         # php.ini's save_path, and PHP's own GC is off (gc_probability = 0).\n\
         # Each minute, closes every unlock window (`corral site unlock`) that has ended.\n\
         SHELL=/bin/sh\n\
         PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n\
         09,39 * * * * root [ -x {exe} ] && {exe} site gc-sessions --quiet{args}\n\
         * * * * * root [ -x {exe} ] && {exe} site lock --expired --quiet{lock_args}\n"
    )
}

/// One shell word; `%` is cron's newline and is escaped for it.
fn sh_quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:,=+@".contains(&b));
    let q = if plain {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    };
    q.replace('%', "\\%")
}

/// Weekly (or past 100M), 8 kept, compressed one rotation late, run as the
/// site owner: the logs dir is the tenant's, so root must not rename or
/// create files in it (a symlink there would point root's work anywhere;
/// logrotate refuses such a dir without `su`). PHP opens its error_log for
/// each message, so no reopen signal is needed: the next message creates
/// the file again.
pub fn logrotate_text(spec: &SiteSpec, layout: &Layout) -> String {
    format!(
        "# Managed by `corral site` for {domain}; removed with the site.\n\
         {logs}/*.log {{\n\
         \x20   su {user} {user}\n\
         \x20   weekly\n\
         \x20   maxsize 100M\n\
         \x20   rotate 8\n\
         \x20   missingok\n\
         \x20   notifempty\n\
         \x20   compress\n\
         \x20   delaycompress\n\
         }}\n",
        domain = spec.domain,
        logs = layout.logs.display(),
        user = spec.user,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_job_names_every_knob_quoted_for_cron() {
        let mut args = vec![
            "x".to_string(),
            "--webserver-reload".into(),
            "nginx -s reload -p '/srv/a b'".into(),
            "--state-dir".into(),
            "/srv/state%1".into(),
        ];
        let p = Paths::from_args(&mut args).unwrap();
        let text = cron_text(&p, Path::new("/usr/bin/corral"));
        let job = text
            .lines()
            .find(|l| l.starts_with("* * * * * root "))
            .unwrap();
        assert!(job.contains("site lock --expired --quiet"), "{job}");
        assert!(
            job.contains(r#"--webserver-reload 'nginx -s reload -p '\''/srv/a b'\'''"#),
            "{job}"
        );
        assert!(job.contains(r"--state-dir '/srv/state\%1'"), "{job}");
        assert!(job.contains("--home-base /home"), "{job}");
        assert!(
            job.contains("--php-include-dir /var/lib/corral/php"),
            "{job}"
        );
        assert!(text.contains("site gc-sessions --quiet"), "{text}");
    }
}
