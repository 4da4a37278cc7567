//! `corral reload`, `corral restart` and `corral status`: one request each
//! to the running master's control socket, its answer as text or JSON.

use clap::Args;
use corral_cli::{finish, CliError, ControlTarget, ExitCode, JsonArg, Reply};
use corral_ipc::control::ControlRequest;

/// `corral reload [POOL...]`.
#[derive(Args, Debug)]
pub struct ReloadArgs {
    /// Reload only these pools (a status pool goes with its parent) [default: every pool]
    #[arg(value_name = "POOL")]
    pub pools: Vec<String>,
    #[command(flatten)]
    pub target: ControlTarget,
    #[command(flatten)]
    pub out: JsonArg,
}

/// `corral restart POOL...`.
#[derive(Args, Debug)]
#[command(
    long_about = "A new generation of each named pool on the configuration it runs now, \
    changed or not: new workers with an empty OPcache come up beside the old ones, which \
    finish their requests; the socket never closes. No configuration file is read \
    (`corral reload` applies changes)."
)]
pub struct RestartArgs {
    /// The pools to restart
    #[arg(value_name = "POOL", required = true)]
    pub pools: Vec<String>,
    #[command(flatten)]
    pub target: ControlTarget,
    #[command(flatten)]
    pub out: JsonArg,
}

/// `corral status [POOL]`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Only this pool [default: every pool]
    #[arg(value_name = "POOL")]
    pub pool: Option<String>,
    #[command(flatten)]
    pub target: ControlTarget,
    #[command(flatten)]
    pub out: JsonArg,
}

impl ReloadArgs {
    pub fn run(self) -> ExitCode {
        let req = ControlRequest::Reload { pools: self.pools };
        finish(
            "corral reload",
            self.out.json,
            self.target.request(&req).map(summary),
        )
    }
}

impl RestartArgs {
    pub fn run(self) -> ExitCode {
        let req = ControlRequest::Restart { pools: self.pools };
        finish(
            "corral restart",
            self.out.json,
            self.target.request(&req).map(summary),
        )
    }
}

impl StatusArgs {
    pub fn run(self) -> ExitCode {
        let req = ControlRequest::Status { pool: self.pool };
        let result = self.target.request(&req).and_then(|text| {
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                CliError::new(
                    ExitCode::Software,
                    format!("the master's status is not JSON ({e}): {text}"),
                )
            })?;
            Ok(Reply::new(status_text(&json), json))
        });
        finish("corral status", self.out.json, result)
    }
}

/// A reload or restart summary (`[pool a] reloaded` lines) as it was
/// sent, and as `{"pools": [{"pool": "a", "result": "reloaded"}]}`; a
/// line with a reason (`[pool a] kept: ...`) has `"detail"` too.
fn summary(text: String) -> Reply {
    let pools: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| {
            let (pool, rest) = l.strip_prefix("[pool ")?.split_once("] ")?;
            let mut v = serde_json::json!({ "pool": pool });
            match rest.split_once(": ") {
                Some((result, detail)) => {
                    v["result"] = result.into();
                    v["detail"] = detail.into();
                }
                None => v["result"] = rest.into(),
            }
            Some(v)
        })
        .collect();
    Reply::new(text, serde_json::json!({ "pools": pools }))
}

/// A pool's cgroup counters, in the same layout (nothing for a pool
/// without a cgroup).
fn cgroup_text(cg: &serde_json::Value) -> String {
    let mut out = String::new();
    let Some(cg) = cg.as_object() else {
        return out;
    };
    if let Some(s) = cg.get("cpu seconds").and_then(|v| v.as_f64()) {
        out.push_str(&format!("{:<22}{s:.2}\n", "cpu seconds:"));
    }
    for key in ["memory bytes", "oom kills", "pids current"] {
        if let Some(v) = cg.get(key) {
            out.push_str(&format!("{:<22}{v}\n", format!("{key}:")));
        }
    }
    out
}

/// The JSON status as php-fpm's plain-text layout, one block per pool.
fn status_text(json: &serde_json::Value) -> String {
    let Some(pools) = json.as_array() else {
        return format!("{json}\n");
    };
    let mut out = String::new();
    for p in pools {
        for key in [
            "pool",
            "process manager",
            "accepted conn",
            "idle processes",
            "active processes",
            "total processes",
            "max children reached",
        ] {
            let v = &p[key];
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            out.push_str(&format!("{:<22}{}\n", format!("{key}:"), v));
        }
        out.push_str(&cgroup_text(&p["cgroup"]));
        for proc_ in p["processes"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  pid {:<8} {:<28} requests {:<6} {} {}\n",
                proc_["pid"],
                proc_["state"].as_str().unwrap_or(""),
                proc_["requests"],
                proc_["request method"].as_str().unwrap_or(""),
                proc_["request uri"].as_str().unwrap_or("")
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_shows_a_pool_cgroup() {
        let json = r#"[{"pool":"www","process manager":"static","accepted conn":3,
            "idle processes":2,"active processes":0,"total processes":2,
            "max children reached":0,"processes":[],
            "cgroup":{"cpu seconds":1.234,"memory bytes":1048576,"oom kills":1,"pids current":3}},
            {"pool":"b","process manager":"static","accepted conn":0,"idle processes":0,
            "active processes":0,"total processes":0,"max children reached":0,"processes":[]}]"#;
        let text = status_text(&serde_json::from_str(json).unwrap());
        assert!(
            text.contains(
                "max children reached: 0\ncpu seconds:          1.23\nmemory bytes:         1048576\noom kills:            1\npids current:         3\n"
            ),
            "{text}"
        );
        let b = text.split("pool:                 b").nth(1).unwrap();
        assert!(!b.contains("cpu seconds"), "{text}");
    }

    #[test]
    fn a_summary_becomes_one_object_per_pool() {
        let r = summary("[pool a] restarted\n[pool b] kept: no such user".into());
        assert_eq!(
            r.json,
            serde_json::json!({"pools": [
                {"pool": "a", "result": "restarted"},
                {"pool": "b", "result": "kept", "detail": "no such user"},
            ]})
        );
        assert_eq!(r.text, "[pool a] restarted\n[pool b] kept: no such user");
    }
}
