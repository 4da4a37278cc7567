//! The `-tt` dump, driven by the directive table.

use crate::directives::{self, Directive, Kind, Section, Settings, Value};
use crate::Config;

/// The text php-fpm prints for one directive (fpm_conf_dump's formats).
fn render(d: &Directive, s: &Settings) -> String {
    let v = s.get(d.name);
    match (d.name, d.kind, v) {
        ("process.priority", _, None) => "undefined".into(),
        ("events.mechanism", _, None) => "epoll".into(),
        ("events.mechanism", _, Some(Value::Str(m))) => m.to_ascii_lowercase(),
        (_, Kind::LogLevel, Some(Value::LogLevel(l))) => l.name().into(),
        // php-fpm prints its internal 0 ("unknown value") when unset.
        (_, Kind::LogLevel, _) => "unknown value".into(),
        (_, Kind::Time, Some(Value::Int(n))) => format!("{n}s"),
        (_, Kind::CpuPercent, Some(Value::Int(n))) => format!("{n}%"),
        (_, _, Some(Value::Int(n))) => n.to_string(),
        (_, _, Some(Value::Bool(b))) => if b { "yes" } else { "no" }.into(),
        (_, _, Some(Value::Str(t))) => t,
        (_, _, Some(Value::Pm(p))) => p.name().into(),
        (_, Kind::Pm, None) => "static".into(),
        (_, Kind::Str, None) => "undefined".into(),
        (_, Kind::Bool, None) => "no".into(),
        (_, _, _) => "0".into(),
    }
}

/// The `-tt` lines, one per NOTICE php-fpm would log, joined with '\n'
/// (the caller adds "[date] NOTICE: " to each).  Blank separators are a
/// single space, as php-fpm logs " ".
pub fn dump(config: &Config) -> String {
    dump_lines(config).join("\n")
}

/// Same as [`dump`], as separate lines.
pub fn dump_lines(config: &Config) -> Vec<String> {
    let mut out = vec!["[global]".to_string()];
    for d in directives::of(Section::Global) {
        if d.is_corral() && !config.global.settings.is_set(d.name) {
            continue;
        }
        out.push(format!(
            "\t{} = {}",
            d.name,
            render(d, &config.global.settings)
        ));
    }
    out.push(" ".into());
    for p in &config.pools {
        out.push(format!("[{}]", p.name));
        for d in directives::of(Section::Pool) {
            if d.name == "apparmor_hat" {
                // Accepted by php-fpm 8.2 but never printed by its dump.
                continue;
            }
            if d.is_corral() && !p.settings.is_set(d.name) {
                continue;
            }
            out.push(format!("\t{} = {}", d.name, render(d, &p.settings)));
            if d.name == "access.format" {
                for sp in p.access_suppress_path.iter().rev() {
                    out.push(format!("\taccess.suppress_path[] = {sp}"));
                }
            }
        }
        for (k, v) in &p.raw_env {
            out.push(format!("\tenv[{k}] = {v}"));
        }
        for (k, v) in &p.raw_php_values {
            out.push(format!("\tphp_value[{k}] = {v}"));
        }
        for (k, v) in &p.raw_php_admin_values {
            out.push(format!("\tphp_admin_value[{k}] = {v}"));
        }
        out.push(" ".into());
    }
    out
}
