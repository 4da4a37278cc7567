#!/usr/bin/env python3
"""Helpers for bench/run.sh: memory of a process tree, listening sockets,
wrk output parsing, and writing BENCHMARKS.md from the collected results.

Subcommands (all print JSON unless noted):
  mem ROOTPID            PSS/RSS (KiB, /proc/PID/smaps_rollup) of a server's
                         process tree: root, depth-1 children, depth-2 children
  listening PREFIX       how many unix sockets whose path starts with PREFIX
                         are in the LISTEN state (from /proc/net/unix)
  wrk FILE               parse `wrk --latency` output
  cold FILE...           median/max latency of `corral bench --json` outputs
  report DIR OUT.md      write BENCHMARKS.md from DIR/results.jsonl + DIR/meta.json
                         (+ DIR/noisy.jsonl and DIR/noisy-meta.json when present,
                         + DIR/apps-meta.json after a BENCH_ONLY=apps run)
  noisy BIN ROOT OUT_DIR DUR
                         noisy neighbour: two sites made by `corral site add`,
                         the victim's CPU-bound page measured alone and while the
                         attacker burns CPU, hogs memory and forks, on corral and
                         then on php-fpm 8.2 with the same pool files (corral.*
                         lines removed); writes OUT_DIR/noisy.jsonl and
                         OUT_DIR/noisy-meta.json
"""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SERVERS = ("php-fpm", "corral")


# ---------------------------------------------------------------- processes
def _ppid_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: split after the last ')'.
        rest = s[s.rfind(")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def _rollup(pid):
    out = {"pid": pid, "pss": 0, "rss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == "Pss":
                    out["pss"] = int(v.split()[0])
                elif k == "Rss":
                    out["rss"] = int(v.split()[0])
    except OSError:
        out["gone"] = True
    return out


def cmd_mem(root):
    root = int(root)
    kids = _ppid_map()
    levels = [[root]]
    while levels[-1]:
        levels.append([c for p in levels[-1] for c in kids.get(p, [])])
    levels.pop()
    procs = [[_rollup(p) for p in lvl] for lvl in levels]
    allp = [p for lvl in procs for p in lvl]
    res = {
        "master": procs[0][0],
        "depth1": procs[1] if len(procs) > 1 else [],
        "depth2": procs[2] if len(procs) > 2 else [],
        "deeper": [p for lvl in procs[3:] for p in lvl],
        "total": {
            "pss": sum(p["pss"] for p in allp),
            "rss": sum(p["rss"] for p in allp),
            "count": len(allp),
        },
    }
    print(json.dumps(res))


def cmd_listening(prefix):
    n = 0
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]
            if len(parts) >= 8 and parts[7].startswith(prefix) and int(parts[3], 16) & 0x10000:
                n += 1
    print(n)


# ---------------------------------------------------------------------- wrk
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _ms(tok):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", tok)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_wrk(text):
    r = {"rps": None, "requests": 0, "non2xx": 0, "sock_connect": 0, "sock_read": 0,
         "sock_write": 0, "sock_timeout": 0, "lat_ms": {}}
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"(50|75|90|99)%\s+(\S+)", s)
        if m:
            r["lat_ms"]["p" + m.group(1)] = _ms(m.group(2))
        m = re.match(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", s)
        if m:
            r["lat_ms"]["mean"] = _ms(m.group(1))
            r["lat_ms"]["max"] = _ms(m.group(3))
        m = re.match(r"(\d+) requests in", s)
        if m:
            r["requests"] = int(m.group(1))
        m = re.match(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", s)
        if m:
            (r["sock_connect"], r["sock_read"], r["sock_write"],
             r["sock_timeout"]) = map(int, m.groups())
        m = re.match(r"Non-2xx or 3xx responses: (\d+)", s)
        if m:
            r["non2xx"] = int(m.group(1))
        m = re.match(r"Requests/sec:\s+([\d.]+)", s)
        if m:
            r["rps"] = float(m.group(1))
    r["sock_errors"] = r["sock_connect"] + r["sock_read"] + r["sock_write"] + r["sock_timeout"]
    return r


def cmd_wrk(path):
    with open(path) as f:
        print(json.dumps(parse_wrk(f.read())))


def cmd_cold(*paths):
    lat = []
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        ok = d.get("status_codes", {}).get("200", 0) == 1
        lat.append(d["latency_us"]["max"] / 1000.0 if ok else None)
    good = [x for x in lat if x is not None]
    print(json.dumps({
        "cold_ms_median": statistics.median(good) if good else None,
        "cold_ms_max": max(good) if good else None,
        "cold_ok": len(good), "cold_n": len(lat), "cold_all_ms": lat,
    }))


# --------------------------------------------------------------- recording
def _num(v):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def cmd_emit(section, case, server, rnd, kind, path, *kv):
    """Append one measurement to $BENCH_RESULTS (JSON lines).

    kind: cb (corral bench --json), wrk (wrk --latency text), json (a JSON object
    to merge), kv (no file; only the key=value pairs)."""
    rec = {"section": section, "case": case, "server": server, "round": int(rnd)}
    if kind == "cb":
        with open(path) as f:
            d = json.load(f)
        lat = d.get("latency_us", {})
        rec.update({
            "rps": d.get("rps"), "requests": d.get("requests"),
            "errors": d.get("errors_total"), "error_kinds": d.get("errors"),
            "status_codes": d.get("status_codes"), "first_error": d.get("first_error"),
            "lat_ms": {k: (v / 1000.0 if v is not None else None) for k, v in lat.items()},
        })
    elif kind == "wrk":
        with open(path) as f:
            w = parse_wrk(f.read())
        w["failed"] = w["non2xx"] + w["sock_errors"]
        rec.update(w)
    elif kind == "json":
        with open(path) as f:
            rec.update(json.load(f))
    for item in kv:
        k, _, v = item.partition("=")
        rec[k] = _num(v)
    with open(os.environ["BENCH_RESULTS"], "a") as f:
        f.write(json.dumps(rec) + "\n")
    return rec


def cmd_memsummary(kind, path):
    """Reduce `mem` output to flat numbers: master, prototypes, mean worker."""
    with open(path) as f:
        m = json.load(f)
    if kind == "corral":
        protos, workers = m["depth1"], m["depth2"] + m["deeper"]
    else:
        protos, workers = [], m["depth1"] + m["depth2"] + m["deeper"]
    live = [w for w in workers if not w.get("gone")]
    out = {
        "master_pss": m["master"]["pss"], "master_rss": m["master"]["rss"],
        "proto_pss": sum(p["pss"] for p in protos) if protos else None,
        "proto_rss": sum(p["rss"] for p in protos) if protos else None,
        "protos": len(protos), "workers": len(live),
        "worker_pss": statistics.mean(w["pss"] for w in live) if live else None,
        "worker_rss": statistics.mean(w["rss"] for w in live) if live else None,
        "total_pss": m["total"]["pss"], "total_rss": m["total"]["rss"],
        "procs": m["total"]["count"],
    }
    print(json.dumps(out))


def cmd_peak(section="fcgi", server="php-fpm"):
    rows = []
    with open(os.environ["BENCH_RESULTS"]) as f:
        rows = [json.loads(x) for x in f if x.strip()]
    best = 0
    for c in cases(rows, section):
        if "keep=off" in c:
            v = med(rows, section, c, server, "rps") or 0
            best = max(best, v)
    print(int(best))


# ------------------------------------------------------------------- report
def load(dirname):
    rows = []
    with open(os.path.join(dirname, "results.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    with open(os.path.join(dirname, "meta.json")) as f:
        meta = json.load(f)
    return rows, meta


def load_apps_meta(dirname):
    """apps-meta.json: written by `BENCH_ONLY=apps`, which re-runs section 3 alone."""
    path = os.path.join(dirname, "apps-meta.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def get(d, path):
    for k in path.split("."):
        if d is None:
            return None
        d = d.get(k) if isinstance(d, dict) else None
    return d


def med(rows, section, case, server, path):
    vals = [get(r, path) for r in rows
            if r["section"] == section and r["case"] == case and r["server"] == server]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def cases(rows, section):
    seen = []
    for r in rows:
        if r["section"] == section and r["case"] not in seen:
            seen.append(r["case"])
    return seen


def fmt(v, nd=0):
    if v is None:
        return "–"
    if isinstance(v, float) and nd:
        return f"{v:,.{nd}f}"
    if isinstance(v, float):
        return f"{v:,.0f}"
    return f"{v:,}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}x"


def summary(rows, meta):
    """Headline numbers: list of (what, php-fpm, corral, ratio, better)."""
    out = []

    def add(label, section, case, path, nd=0, unit="", lower_better=False):
        f = med(rows, section, case, "php-fpm", path)
        c = med(rows, section, case, "corral", path)
        if f is None and c is None:
            return
        out.append((label, fmt(f, nd) + unit, fmt(c, nd) + unit, ratio(c, f),
                    "lower" if lower_better else "higher"))

    add("FastCGI hello, c=16, req/s", "fcgi", "c=16 keep=off", "rps")
    add("FastCGI hello, c=16, p99 ms", "fcgi", "c=16 keep=off", "lat_ms.p99", 2, "", True)
    add("nginx+wrk hello, c=16, req/s", "nginx", "c=16", "rps")
    add("nginx+wrk hello, c=16, p99 ms", "nginx", "c=16", "lat_ms.p99", 2, "", True)
    add("DokuWiki via nginx, req/s", "apps", "dokuwiki", "rps", 1)
    add("WordPress via nginx, req/s", "apps", "wordpress", "rps", 1)
    add("Laravel via nginx, req/s", "apps", "laravel", "rps", 1)
    add("PSS per idle worker, KiB", "memory", "static", "idle_worker_pss", 0, "", True)
    add("PSS per worker after load, KiB", "memory", "static", "busy_worker_pss", 0, "", True)
    add("master PSS, KiB", "memory", "static", "master_pss", 0, "", True)
    add(f"{meta.get('pools')} ondemand pools: total PSS idle, KiB", "density", "pools",
        "total_pss", 0, "", True)
    add(f"{meta.get('pools')} ondemand pools: start-up s", "density", "pools", "startup_s",
        2, "", True)
    add("cold first request, ms", "density", "pools", "cold_ms_median", 1, "", True)
    add("first request 15 s later, ms", "density", "pools", "after15_ms_median", 1, "", True)
    later = [r for r in rows if r["section"] == "later"]
    if later:
        n = later[0].get("after_s")
        add(f"first request {n} s later (corral's defaults), ms", "later", "defaults",
            "after_ms_median", 1, "", True)
        f = med(rows, "later", "defaults", "php-fpm", "after_ms_median")
        c = med(rows, "later", "prototype_idle_timeout=15m", "corral", "after_ms_median")
        if c is not None:
            out.append((f"first request {n} s later (corral.prototype_idle_timeout = 15m), ms",
                        fmt(f, 1), fmt(c, 1), ratio(c, f), "lower"))
    add("reload (config changed) failed requests", "reload", "changed", "failed", 0, "",
        True)
    add("reload (config changed) p99 ms", "reload", "changed", "lat_ms.p99", 2, "", True)
    return out


def table(header, body):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    for row in body:
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
    return "\n".join(lines)


def load_noisy(dirname):
    path = os.path.join(dirname, "noisy.jsonl")
    if not os.path.exists(path):
        return None, None
    with open(path) as f:
        rows = [json.loads(x) for x in f if x.strip()]
    with open(os.path.join(dirname, "noisy-meta.json")) as f:
        return rows, json.load(f)


def _noisy_row(rows, server, case):
    for r in rows:
        if r["server"] == server and r["case"] == case:
            return r
    return None


def noisy_summary(dirname):
    rows, _ = load_noisy(dirname)
    if not rows:
        return []
    out = []
    for case, label in (("alone", "alone"), ("cpu", "attacker burning CPU"),
                        ("mem", "attacker hogging memory"), ("fork", "attacker forking")):
        f = get(_noisy_row(rows, "php-fpm", case), "lat_ms.p99")
        c = get(_noisy_row(rows, "corral", case), "lat_ms.p99")
        out.append((f"noisy neighbour: victim p99 ms, {label}", fmt(f, 1), fmt(c, 1), ratio(c, f),
                    "lower"))
    return out


def noisy_targets(rows, server):
    """(target, met?, evidence) for one server."""
    alone = get(_noisy_row(rows, server, "alone"), "lat_ms.p99")
    out = []
    for case in ("cpu", "mem", "fork"):
        p99 = get(_noisy_row(rows, server, case), "lat_ms.p99")
        r = p99 / alone if p99 and alone else None
        out.append((f"victim p99 with the attacker {dict(cpu='burning CPU', mem='hogging memory', fork='forking')[case]}"
                    " within 1.5x of alone", r is not None and r <= 1.5,
                    f"{fmt(p99, 1)} ms vs {fmt(alone, 1)} ms = {r:.2f}x" if r else "–"))
    m = _noisy_row(rows, server, "mem") or {}
    ok = (m.get("hogs_completed") == 0 and (m.get("hogs_killed") or 0) > 0
          and (m.get("attacker_oom_kills") or 0) > 0 and m.get("oom_kills_elsewhere") == 0
          and not m.get("victim_oom_kills") and m.get("errors") == 0)
    out.append(("the memory hog ends in its own cgroup's OOM, the victim untouched", ok,
                f"{m.get('hogs_completed')} hogs of {m.get('hog_mb', '?')} MiB completed,"
                f" {m.get('hogs_killed')} SIGKILLed; OOM kills in the attacker's memory cgroup:"
                f" {m.get('attacker_oom_kills')}, in the victim's: {m.get('victim_oom_kills')},"
                f" elsewhere on the host: {m.get('oom_kills_elsewhere')}; victim errors: {m.get('errors')}"))
    fk = _noisy_row(rows, server, "fork") or {}
    lim = fk.get("attacker_limits") or {}
    forks = fk.get("forks")
    out.append(("forks stop at the pids limit", bool(lim.get("pids_limited")) and forks is not None
                and forks < fk.get("fork_cap", FORK_CAP),
                f"{forks} of {FORK_CAP} forks ({fk.get('fork_error')}), peak {fk.get('attacker_peak_procs')}"
                f" attacker processes, pids.max {lim.get('pids.max', '–')}"))
    return out


def noisy_section(dirname, w):
    rows, meta = load_noisy(dirname)
    if not rows:
        return
    w("## 7. Noisy neighbour\n")
    w(f"Run on **{meta['date']}** (git {meta.get('corral_rev', '?')}; load average before:"
      f" {meta.get('loadavg')}), with `sudo BENCH_ONLY=noisy bench/run.sh` (also part of the"
      " full run). Two sites are made by `corral site add --template wordpress` under /var/lib,"
      " as in `crates/corral/tests/pens.rs`: a victim with the template's defaults, and an"
      " attacker whose exec functions are back and `open_basedir` off (it runs native code:"
      " `tests/native/pens_native.c`). The victim's page is `tests/php/pens_victim.php?do=cpu`"
      f" (n = {meta.get('victim_n')}, about 5 ms of CPU alone), measured with"
      f" `corral bench -c 1 -d {meta['dur']}` on its socket, alone and while the attacker"
      f" (a) burns CPU with {meta.get('attacker_max_children')} concurrent requests of 200 ms"
      f" (its `pm.max_children`), (b) hogs memory: a native process touching"
      f" {meta.get('hog_mb')} MiB (memory_limit + 1 GiB, or 256 MiB past the pool's own"
      f" limit), request after request, (c) forks: one request forks up to {FORK_CAP}"
      " CPU-burning processes and holds them for the measurement. corral runs the pool"
      " files as `corral site add` wrote them (with the template's `corral.*` limits, if"
      " any); php-fpm 8.2 runs the same files with the `corral.*` lines removed, in the same"
      " run, right after.\n")
    if meta.get("note"):
        w(f"{meta['note']}\n")
    body = []
    for s in SERVERS:
        alone = get(_noisy_row(rows, s, "alone"), "lat_ms.p99")
        for case in NOISY_CASES:
            r = _noisy_row(rows, s, case)
            if not r:
                continue
            p99 = get(r, "lat_ms.p99")
            if case == "cpu":
                what = f"{r.get('attacker_requests')} attacker requests"
            elif case == "mem":
                what = (f"hogs completed {r.get('hogs_completed')}, SIGKILLed {r.get('hogs_killed')};"
                        f" attacker cgroup OOM kills {r.get('attacker_oom_kills')}")
            elif case == "fork":
                what = f"{r.get('forks')} forks ({r.get('fork_error')}), peak {r.get('attacker_peak_procs')} processes"
            else:
                what = ""
            body.append([case, s, fmt(get(r, "lat_ms.p50"), 1), fmt(p99, 1),
                         f"{p99 / alone:.2f}x" if p99 and alone else "–",
                         fmt(r.get("errors")), fmt(r.get("oom_kills_elsewhere")), what])
    w(table(["attack", "server", "victim p50 ms", "victim p99 ms", "p99 / alone",
             "victim errors", "OOM kills outside the attacker's cgroup", "attacker"], body))
    w("")
    lim = (_noisy_row(rows, "corral", "alone") or {}).get("attacker_limits") or {}
    shown = {k: v for k, v in lim.items() if "." in k and "cgroup" not in k}
    w("The attacker's cgroup under corral: "
      + (", ".join(f"`{k}` = {v}" for k, v in shown.items()) or "none found")
      + f" (memory cgroup `{lim.get('memory_cgroup')}`).\n")
    pool = (meta.get("pool_files") or {}).get("attacker", "")
    lines = [l.strip() for l in pool.splitlines() if l.strip().startswith("corral.")]
    w("The `corral.*` lines of the attacker's pool file (php-fpm runs it without them): "
      + (", ".join(f"`{l}`" for l in lines) if lines else "none: the template sets no limits")
      + ".\n")
    w("Targets (issue 9):\n")
    body = []
    for s in SERVERS:
        for target, met, ev in noisy_targets(rows, s):
            body.append([s, target, "**met**" if met else "not met", ev])
    w(table(["server", "target", "", "evidence"], body))
    w("")
    w("The exact commands (`$S` is the run's sandbox under /var/lib):\n")
    w("```")
    w(meta.get("commands", ""))
    w("```\n")
    w("Raw results: `bench/results/noisy.jsonl`. The machine is shared (2 CPUs, other"
      " work running), so single numbers move between runs; the ratios within one run are"
      " what to compare.\n")


def kept_sections(path):
    """The lines of `path` from its first '## 8' heading up to '## Exact commands'."""
    try:
        lines = open(path).read().split("\n")
    except OSError:
        return []
    out, keep = [], False
    for line in lines:
        if line.startswith("## Exact commands"):
            break
        if line.startswith("## 8"):
            keep = True
        if keep:
            out.append(line)
    return out


def command_block(meta):
    """A run's commands as a fenced block, its temp dir shown as `$W`, each
    distinct line once."""
    out, seen = ["```"], set()
    for line in meta.get("commands", "").splitlines():
        line = line.replace(meta.get("workdir", "\0"), "$W")
        if line not in seen:
            seen.add(line)
            out.append(line)
    out.append("```\n")
    return out


def cmd_report(dirname, out_md):
    rows, meta = load(dirname)
    apps_meta = load_apps_meta(dirname)
    am = dict(meta, **(apps_meta or {}))
    R = meta["rounds"]
    md = []
    w = md.append
    w("# Benchmarks: corral vs php-fpm 8.2\n")
    w(f"Generated by `bench/run.sh` on **{meta['date']}**"
      f"{' (BENCH_QUICK=1 smoke run: short measurements, numbers are rough)' if meta.get('quick') else ''}."
      f" Each number is the **median of {R} round(s)**; in every round both servers are"
      " measured one after the other (the order alternates between rounds), with the same"
      " pool settings. Ratio = corral / php-fpm (for req/s higher is better; for latency,"
      " memory and errors lower is better).\n")
    w("## Machine and versions\n")
    w(table(["", ""], [
        ["CPU", f"{meta['cpu']} ({meta['nproc']} CPUs)"],
        ["RAM", meta["ram"]],
        ["kernel", meta["kernel"]],
        ["OS", meta["os"]],
        ["php-fpm", meta["php_fpm"]],
        ["corral", f"git {meta['corral_rev']}"],
        ["nginx", meta["nginx"]],
        ["wrk", meta["wrk"]],
        ["MariaDB", meta["mariadb"]],
        ["DokuWiki / WordPress / Laravel (`php-laravel-framework`)",
         f"{am['dokuwiki']} / {am['wordpress']} / {am.get('laravel', '–')}"],
        ["load average before the run", meta["loadavg"]],
    ]))
    w("")
    w("Both servers run the same pool: `user = www-data`, `pm = static`, "
      f"`pm.max_children = {meta['workers']}`, php.ini `/etc/php/8.2/fpm/php.ini` with the "
      "scan dir `/etc/php/8.2/fpm/conf.d` (same OPcache settings); the harness checks"
      " through both sockets that PHP reports the same SAPI, php.ini, scanned ini files and"
      " OPcache state before measuring:\n")
    w("```")
    w(meta.get("sanity", "").strip())
    w("```\n")
    w("The load generators (`corral bench`, `wrk`) and nginx run on the same "
      f"{meta['nproc']}-CPU machine as the server under test, so every number includes "
      "their CPU use. Other processes on the machine were not stopped; see the load average"
      " above.\n")

    w("## Headline\n")
    w(table(["what", "php-fpm", "corral", "corral/php-fpm", "better"],
            summary(rows, meta) + noisy_summary(dirname)))
    w("")

    # 1 -----------------------------------------------------------------
    w("## 1. Hello world over FastCGI directly (`corral bench`)\n")
    w(f"`corral bench -t unix:SOCK -s {meta['hello']} -c C -d {meta['dur']} -w {meta['warm']}"
      " [-k]` against each server's socket. `keep=on` sets FCGI_KEEP_CONN and reuses"
      f" connections; only with c ≤ pm.max_children ({meta['workers']}), since a php-fpm"
      " worker serves one connection at a time.\n")
    body = []
    for c in cases(rows, "fcgi"):
        f = med(rows, "fcgi", c, "php-fpm", "rps")
        k = med(rows, "fcgi", c, "corral", "rps")
        body.append([c, fmt(f), fmt(k), ratio(k, f),
                     fmt(med(rows, "fcgi", c, "php-fpm", "lat_ms.p50"), 3),
                     fmt(med(rows, "fcgi", c, "corral", "lat_ms.p50"), 3),
                     fmt(med(rows, "fcgi", c, "php-fpm", "lat_ms.p99"), 3),
                     fmt(med(rows, "fcgi", c, "corral", "lat_ms.p99"), 3),
                     fmt(med(rows, "fcgi", c, "php-fpm", "errors")),
                     fmt(med(rows, "fcgi", c, "corral", "errors"))])
    w(table(["case", "php-fpm req/s", "corral req/s", "ratio", "php-fpm p50 ms",
             "corral p50 ms", "php-fpm p99 ms", "corral p99 ms", "php-fpm errors",
             "corral errors"], body))
    w("")
    st = [r for r in rows if r["section"] == "selftest"]
    if st:
        w(f"Load generator ceiling: `corral bench --self-test -c 4 -d {meta['dur']}` (its"
          " built-in trivial responder on a unix socket, same machine) drives"
          f" **{fmt(statistics.median(r['rps'] for r in st))} req/s**, so the generator is"
          " not what limits the numbers above (it does share the 2 CPUs with the server).\n")
    w("![throughput vs concurrency](bench/results/throughput.png)\n")
    w(f"### Latency at a fixed rate (open loop, `corral bench -r RATE -c {meta['rate_c']}`)\n")
    w(f"RATE is 50% and 90% of php-fpm's peak measured above ({fmt(meta.get('peak'))} req/s,"
      " keep-conn off). Latency counts from the scheduled send time, so stalls are not"
      " hidden.\n")
    body = []
    for c in cases(rows, "rate"):
        for s in SERVERS:
            body.append([c, s] + [fmt(med(rows, "rate", c, s, "lat_ms." + p), 3)
                                  for p in ("p50", "p90", "p99", "p99_9", "max")]
                        + [fmt(med(rows, "rate", c, s, "rps")),
                           fmt(med(rows, "rate", c, s, "errors"))])
        f = med(rows, "rate", c, "php-fpm", "lat_ms.p99")
        k = med(rows, "rate", c, "corral", "lat_ms.p99")
        body.append([c, "**ratio p99**", "", "", ratio(k, f), "", "", "", ""])
    w(table(["rate", "server", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
             "achieved req/s", "errors"], body))
    w("")
    w("![latency percentiles](bench/results/latency.png)\n")

    # 2 -----------------------------------------------------------------
    w("## 2. Hello world through nginx (`wrk`)\n")
    w(f"nginx {meta['nginx']} (`worker_processes 1`, own config in a temp dir), one port per"
      f" backend; `wrk -t T -c C -d {meta['dur']} --latency http://127.0.0.1:PORT/hello.php`"
      " after a short warm-up. *upstream keepalive*: the same through an nginx `upstream` block"
      " with `keepalive N` and `fastcgi_keep_conn on`, N = pm.max_children, or 4 times it; a"
      " php-fpm worker serves one kept connection until nginx closes it, a corral worker waits"
      " on its kept connections and the pool's socket at once (docs/architecture.md).\n")
    body = []
    for c in cases(rows, "nginx"):
        f = med(rows, "nginx", c, "php-fpm", "rps")
        k = med(rows, "nginx", c, "corral", "rps")
        body.append([c, fmt(f), fmt(k), ratio(k, f),
                     fmt(med(rows, "nginx", c, "php-fpm", "lat_ms.p99"), 2),
                     fmt(med(rows, "nginx", c, "corral", "lat_ms.p99"), 2),
                     fmt(med(rows, "nginx", c, "php-fpm", "failed")),
                     fmt(med(rows, "nginx", c, "corral", "failed"))])
    w(table(["case", "php-fpm req/s", "corral req/s", "ratio", "php-fpm p99 ms",
             "corral p99 ms", "php-fpm failed", "corral failed"], body))
    w("")

    # 3 -----------------------------------------------------------------
    w("## 3. Real applications through nginx (`wrk`)\n")
    if apps_meta:
        w(f"Re-run alone on **{apps_meta['date']}** with `sudo BENCH_ONLY=apps bench/run.sh`"
          f" (git {apps_meta.get('corral_rev', '?')}; median of {apps_meta['rounds']} round(s)"
          f"{', BENCH_QUICK=1: short measurements, numbers are rough' if apps_meta.get('quick') else ''};"
          f" load average before: {apps_meta.get('loadavg')}); the other sections are from the"
          f" run on {meta['date']}.\n")
    cached = am.get("laravel_cached") or []
    w(f"DokuWiki (Debian `dokuwiki`, page `{am['doku_url']}`), WordPress (Debian"
      " `wordpress`, MariaDB, freshly installed by the harness, front page with the default"
      " post, `DISABLE_WP_CRON`) and Laravel (Debian `php-laravel-framework`"
      f" {am.get('laravel', '?')}, on its own autoloaders, no composer): the small app of the"
      " browser tests (`crates/corral/tests/browser/laravel-app`), copied into the run's temp"
      f" dir, page `{am.get('laravel_url', '/page')}`: a controller behind Laravel's stock"
      " global and `web` middleware (maintenance check, post size, trimmed strings, cookie"
      " encryption, file session, shared errors, CSRF token, route bindings) reads a list"
      " from the file cache and renders a Blade layout with a partial and a 20-row loop; no"
      " database. A `.env` made for the run holds a fresh `APP_KEY`, `APP_ENV=production`,"
      " `APP_DEBUG=false`, and before measuring"
      + (" " + ", ".join(f"`artisan {c}`" for c in cached) + " cached the configuration,"
         " the routes and the compiled Blade views (as www-data)" if cached else
         " nothing was cached")
      + ". wrk sends one session cookie, made by a request before the measurements, so every"
      " request reads and writes that one session file (without it each request would leave"
      " a new session file behind). Both servers serve the same directory with the same"
      " php.ini and pool; the harness checks that both answer 200 with the page (Laravel's:"
      " the greeting, the cached rows and a visit count read back from the session) before"
      f" measuring. `wrk -t2 -c {am['app_c']} -d {am['app_dur']} --latency`.\n")
    body = []
    for c in cases(rows, "apps"):
        f = med(rows, "apps", c, "php-fpm", "rps")
        k = med(rows, "apps", c, "corral", "rps")
        body.append([c, fmt(f, 1), fmt(k, 1), ratio(k, f),
                     fmt(med(rows, "apps", c, "php-fpm", "lat_ms.p50"), 1),
                     fmt(med(rows, "apps", c, "corral", "lat_ms.p50"), 1),
                     fmt(med(rows, "apps", c, "php-fpm", "lat_ms.p99"), 1),
                     fmt(med(rows, "apps", c, "corral", "lat_ms.p99"), 1),
                     fmt(med(rows, "apps", c, "php-fpm", "failed")),
                     fmt(med(rows, "apps", c, "corral", "failed"))])
    w(table(["app", "php-fpm req/s", "corral req/s", "ratio", "php-fpm p50 ms",
             "corral p50 ms", "php-fpm p99 ms", "corral p99 ms", "php-fpm failed",
             "corral failed"], body))
    w("")

    # 4 -----------------------------------------------------------------
    w("## 4. Memory (PSS and RSS from `/proc/PID/smaps_rollup`, KiB)\n")
    w("Each server is started **alone** (the other one stopped, so shared pages are not"
      f" split between them) with the static pool of {meta['workers']} workers. *Idle*:"
      " 2 s after start-up, before any request. *After load*: after hello world, DokuWiki"
      " and WordPress were each served through nginx for a few seconds (the workers have"
      " compiled and cached those scripts). Per-worker values are the mean over the pool's"
      " workers. php-fpm's workers are forked from its master, which has PHP loaded;"
      " corral's master never loads PHP, and its workers are forked from a per-pool"
      " *prototype* (PHP started once as the pool user) — the prototype is reported on its"
      " own row, and it is part of corral's cost.\n")
    body = []
    for key, label in (("master_pss", "master PSS"), ("master_rss", "master RSS"),
                       ("proto_pss", "prototype PSS (corral only)"),
                       ("proto_rss", "prototype RSS (corral only)"),
                       ("idle_worker_pss", "idle worker PSS"),
                       ("idle_worker_rss", "idle worker RSS"),
                       ("busy_worker_pss", "worker PSS after load"),
                       ("busy_worker_rss", "worker RSS after load"),
                       ("idle_total_pss", "all processes PSS, idle"),
                       ("busy_total_pss", "all processes PSS, after load")):
        f = med(rows, "memory", "static", "php-fpm", key)
        k = med(rows, "memory", "static", "corral", key)
        body.append([label, fmt(f), fmt(k), ratio(k, f)])
    w(table(["", "php-fpm", "corral", "ratio"], body))
    w("")
    w("![memory](bench/results/memory.png)\n")

    # 5 -----------------------------------------------------------------
    w(f"## 5. Density: {meta['pools']} ondemand pools\n")
    w(f"{meta['pools']} pools, `pm = ondemand`, `pm.max_children = 2`, each with its own unix"
      " socket, all as www-data; each server started alone. *Start-up*: from exec until"
      " all sockets are in the LISTEN state in `/proc/net/unix` (probing with connect()"
      " would wake the ondemand pools). Memory is the sum over all the server's processes,"
      " 3 s after start-up with every pool idle. *Cold request*: the first request to"
      f" {meta['cold_n']} different pools, one after the other (`corral bench -n 1 -c 1`),"
      " median of those. corral starts its zygote at the first of them (that one is"
      " exec'd), so the others are forked from it. *15 s later*: the same pools again,"
      " once their workers have gone on the 10 s idle timeout (corral's prototypes are"
      " still warm; php-fpm forks from its master).\n")
    body = []
    for key, label, nd in (("startup_s", "start-up until all sockets listen, s", 3),
                           ("ready_s", "start-up until 'ready to handle connections', s", 3),
                           ("master_pss", "master PSS, KiB", 0),
                           ("master_rss", "master RSS, KiB", 0),
                           ("total_pss", "all processes PSS, idle, KiB", 0),
                           ("total_rss", "all processes RSS, idle, KiB", 0),
                           ("procs", "processes, idle", 0),
                           ("cold_ms_median", "cold first request, median ms", 1),
                           ("cold_ms_max", "cold first request, max ms", 1),
                           ("after15_ms_median", "first request 15 s later (workers gone), median ms", 1),
                           ("procs_after", "processes after the cold requests", 0)):
        f = med(rows, "density", "pools", "php-fpm", key)
        k = med(rows, "density", "pools", "corral", key)
        body.append([label, fmt(f, nd), fmt(k, nd), ratio(k, f)])
    w(table(["", "php-fpm", "corral", "ratio"], body))
    w("")
    later = [r for r in rows if r["section"] == "later"]
    if later:
        n = later[0].get("after_s")
        w(f"**The first request after {n} s idle.** Three ondemand pools per column, both"
          " servers running at once (they only idle in between), the same pool settings as"
          f" above: the first request to each pool, then the next one {n} s later; medians of"
          " the three. With corral's defaults the pool's prototype has gone dormant by then"
          " (`corral.prototype_idle_timeout`, ten `pm.process_idle_timeout`s: 100 s), so the"
          " request starts PHP again, forked from the zygote; with"
          " `corral.prototype_idle_timeout = 15m` it is forked from the still-warm prototype.\n")
        body = []
        for key, label in (("first_ms_median", "first request, ms"),
                           ("after_ms_median", f"first request {n} s later, ms")):
            f = med(rows, "later", "defaults", "php-fpm", key)
            d = med(rows, "later", "defaults", "corral", key)
            k = med(rows, "later", "prototype_idle_timeout=15m", "corral", key)
            body.append([label, fmt(f, 1), fmt(d, 1), ratio(d, f), fmt(k, 1), ratio(k, f)])
        w(table(["", "php-fpm", "corral, defaults", "ratio",
                 "corral, prototype_idle_timeout = 15m", "ratio"], body))
        w("")
    cp = med(rows, "density", "pools", "corral", "procs")
    if cp is not None and cp <= 1:
        w("In this corral build an ondemand pool's prototype starts lazily, on the pool's"
          " first connection: with every pool idle, corral is a single process (its master)."
          " The price is the cold request, which includes starting PHP for that pool in a"
          " new prototype and forking a worker from it; php-fpm's cold request is only a"
          " fork of its master, which has PHP loaded already.\n")
    elif cp is not None:
        w(f"In this corral build every ondemand pool starts a prototype (PHP loaded, no"
          f" workers) at start-up: {fmt(cp)} processes with every pool idle. That is"
          " included in the start-up time and memory above.\n")

    # 6 -----------------------------------------------------------------
    w(f"## 6. Reload under load ({meta['reloads']} reloads)\n")
    w(f"`wrk -t2 -c {meta['reload_c']} --latency` through nginx on hello world for the duration"
      f" of {meta['reloads']} reloads, one every {meta['reload_gap']} s (php-fpm: `kill -USR2"
      " MASTER`, then wait for its next 'ready to handle connections'; corral: `corral reload"
      " --control-socket ...`). *changed*: before each reload the pool config is edited"
      " (`php_admin_value[memory_limit]` toggled between 128M and 129M), so both servers"
      " must replace their workers. *unchanged*: the same file is reloaded (php-fpm still"
      " restarts every worker; corral keeps an unchanged pool as it is). Failed = non-2xx/3xx"
      " responses + socket errors reported by wrk.\n")
    body = []
    for c in cases(rows, "reload"):
        for s in SERVERS:
            body.append([c, s, fmt(med(rows, "reload", c, s, "reloads_done")),
                         fmt(med(rows, "reload", c, s, "requests")),
                         fmt(med(rows, "reload", c, s, "non2xx")),
                         fmt(med(rows, "reload", c, s, "sock_errors")),
                         fmt(med(rows, "reload", c, s, "failed")),
                         fmt(med(rows, "reload", c, s, "lat_ms.p99"), 2),
                         fmt(med(rows, "reload", c, s, "lat_ms.max"), 1)])
    w(table(["config", "server", "reloads", "requests", "non-2xx", "socket errors",
             "failed", "p99 ms", "max ms"], body))
    w("")

    noisy_section(dirname, w)

    # Sections 8 and up come from other scripts (bench/callgrind.sh,
    # bench/appcost.sh) and are kept as they are in the file being replaced.
    for line in kept_sections(out_md):
        w(line)

    w("## Exact commands\n")
    w("Reproduce everything with `sudo bench/run.sh` (`BENCH_QUICK=1` for a ~3 minute smoke"
      " run; `BENCH_ROUNDS`, `BENCH_POOLS`, `BENCH_WORKERS`, `BENCH_DURATION` override the"
      " defaults). The commands this run executed, in order (first round shown; later"
      " rounds repeat them):\n")
    w("`$W` is the run's temp dir (configs, sockets, logs); the php-fpm and corral"
      " configs and nginx.conf are copied to `bench/results/configs/`. Repeated"
      " commands (warm-ups, later rounds) are listed once.\n")
    md.extend(command_block(meta))
    if apps_meta:
        w("Section 3's re-run (`BENCH_ONLY=apps`; its `$W` is another temp dir):\n")
        md.extend(command_block(apps_meta))
    w("Raw per-round results: `bench/results/results.jsonl`; configs used:"
      " `bench/results/configs/`.\n")
    with open(out_md, "w") as f:
        f.write("\n".join(md))


# ----------------------------------------------------------- noisy neighbour
# The sites live under /var/lib, not /tmp: a pool's private /tmp must not
# hide its own home. Users are `cbn{a,v}-PID`; everything is removed in
# `finally`, also on Ctrl-C.
NOISY_CASES = ("alone", "cpu", "mem", "fork")
FORK_CAP = 200
FPM_BIN = "/usr/sbin/php-fpm8.2"
PHP_INI = "/etc/php/8.2/fpm/php.ini"
PHP_SCAN_DIR = "/etc/php/8.2/fpm/conf.d"
EXEC_FUNCTIONS = ("exec", "passthru", "shell_exec", "system", "proc_open", "popen", "pcntl_exec")


def _log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] noisy: {msg}", file=sys.stderr, flush=True)


def _pool_value(path, key):
    with open(path) as f:
        for line in f:
            k, sep, v = line.partition("=")
            if sep and k.strip() == key:
                return v.strip().strip('"')
    return None


def _size_mb(v):
    if not v:
        return None
    v = v.strip()
    mult = {"k": 1 / 1024, "m": 1, "g": 1024}.get(v[-1].lower())
    try:
        return int(float(v[:-1]) * mult) if mult else int(int(v) / 1048576)
    except ValueError:
        return None


def _uid_pids(uid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                st = f.read()
        except OSError:
            continue
        m = re.search(r"^Uid:\s+(\d+)", st, re.M)
        if m and int(m.group(1)) == uid and "\nState:\tZ" not in st:
            out.append(int(d))
    return out


def _cgroup_dir(pid, controller):
    """The v1 controller's (or, with "", the v2) cgroup dir of pid."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if controller == "" and ctrls == "":
            base = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
            return base + path
        if controller and controller in ctrls.split(","):
            return f"/sys/fs/cgroup/{ctrls}{path}"
    return None


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _chain(leaf, controller):
    """A pool's cgroup and its parents, leaf first, up to (not including)
    this process's own cgroup or the hierarchy's root: corral writes the
    limits on the pool and starts each generation in a leaf below it."""
    own = _cgroup_dir(os.getpid(), controller)
    out = []
    d = leaf
    while d and d != own and os.path.exists(f"{d}/cgroup.procs"):
        parent = os.path.dirname(d)
        if not os.path.exists(f"{parent}/cgroup.procs"):
            break
        out.append(d)
        d = parent
    return out


def _oom_one(d):
    for name in ("memory.oom_control", "memory.events"):
        t = _read(f"{d}/{name}") if d else None
        if t:
            m = re.search(r"^oom_kill (\d+)", t, re.M)
            if m:
                return int(m.group(1))
    return None


def _oom_kills(leaf, controller="memory"):
    """OOM kills along a pool's chain (the most any member counted)."""
    counts = [c for c in (_oom_one(d) for d in _chain(leaf, controller)) if c is not None]
    return max(counts) if counts else (0 if leaf else None)


def _limits(pid):
    """What confines a pool's processes: the tightest value of each limit
    along its cgroup chain."""
    out = {}
    unlimited = {"max", "-1", "9223372036854771712"}
    mem = _cgroup_dir(pid, "memory")
    pids = _cgroup_dir(pid, "pids")
    cpu = _cgroup_dir(pid, "cpu")
    out["memory_cgroup"] = mem
    for d, ctl, keys in ((mem, "memory", ("memory.limit_in_bytes", "memory.max")),
                         (pids, "pids", ("pids.max",)),
                         (cpu, "cpu", ("cpu.shares", "cpu.weight", "cpu.cfs_quota_us", "cpu.max"))):
        for k in keys:
            vals = [v for v in (_read(f"{c}/{k}") for c in _chain(d, ctl)) if v is not None]
            set_ = [v for v in vals if v not in unlimited]
            if set_:
                out[k] = min(set_, key=lambda v: int(v) if v.isdigit() else 1 << 62)
            elif vals:
                out[k] = vals[0]
    out["memory_limited"] = any(out.get(k) not in (None, *unlimited)
                                for k in ("memory.limit_in_bytes", "memory.max"))
    out["pids_limited"] = out.get("pids.max") not in (None, *unlimited)
    out["pids_cgroup"] = pids
    return out


def _run(cmd, env=None, check=True, timeout=120):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


class _Server:
    """corral or php-fpm in the foreground, logging to a file; stopped with
    TERM then KILL of its whole process group."""

    def __init__(self, argv, log, env):
        self.log = log
        with open(log, "w") as out:
            self.p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if "ready to handle connections" in (_read(log) or ""):
                return
            if self.p.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited: {_read(log)}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{argv[0]} not ready within 30 s: {_read(log)}")

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()


def _bench(binary, sock, script, query, conc, dur, warm="0s"):
    """`corral bench` to a pool's socket; returns its JSON."""
    cmd = [binary, "bench", "-t", f"unix:{sock}", "-s", script, "-q", query, "-c", str(conc),
           "-d", dur, "-w", warm, "--timeout", "30s", "--json"]
    r = _run(cmd, timeout=300)
    return json.loads(r.stdout), " ".join(cmd)


class _Background:
    """A `corral bench` (the attacker's load) running while the victim is measured."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)

    def result(self, timeout):
        try:
            out, _ = self.p.communicate(timeout=timeout)
            return json.loads(out) if out.strip() else {}
        except (subprocess.TimeoutExpired, ValueError):
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.communicate()
            return {}


def fcgi_get(sock, script, query, timeout):
    """One FastCGI GET on a unix socket; returns the response body (text)."""
    import socket
    import struct

    def rec(t, content):
        return struct.pack("!BBHHBx", 1, t, 1, len(content), 0) + content

    def pair(k, v):
        k, v = k.encode(), v.encode()
        enc = lambda n: bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)
        return enc(len(k)) + enc(len(v)) + k + v
    params = {"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script, "SCRIPT_NAME": "/" + os.path.basename(script),
              "QUERY_STRING": query, "DOCUMENT_ROOT": os.path.dirname(script), "SERVER_PROTOCOL": "HTTP/1.1",
              "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": "127.0.0.1"}
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    body = b"".join(pair(k, v) for k, v in params.items())
    s.sendall(rec(1, struct.pack("!HB5x", 1, 0)) + rec(4, body) + rec(4, b"") + rec(5, b""))
    buf, out = b"", b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 8:
            _, t, _, n, pad = struct.unpack("!BBHHBx", buf[:8])
            if len(buf) < 8 + n + pad:
                break
            if t == 6:
                out += buf[8:8 + n]
            buf = buf[8 + n + pad:]
            if t == 3:
                s.close()
                return out.decode(errors="replace").partition("\r\n\r\n")[2]
    s.close()
    return out.decode(errors="replace").partition("\r\n\r\n")[2]


class _HogLoop(threading.Thread):
    """The attacker's memory hog, request after request, for `secs`."""

    def __init__(self, a, query, secs):
        super().__init__(daemon=True)
        self.a, self.query, self.until = a, query, time.time() + secs
        self.done = self.killed = self.other = 0
        self.last, self.stop = "", False
        self.start()

    def run(self):
        while not self.stop and time.time() < self.until:
            try:
                body = fcgi_get(self.a["socket"], self.a["script"], self.query, 70)
            except OSError as e:
                body = f"error={e}"
            kv = dict(l.split("=", 1) for l in body.splitlines() if "=" in l)
            if "n_done_mb" in kv:
                self.done += 1
            elif kv.get("native_signal") == "9":
                self.killed += 1
            else:
                self.other += 1
                self.last = body.replace("\n", " ")


class _AttackerRequest(threading.Thread):
    """One long request to the attacker's page, in the background."""

    def __init__(self, a, query, timeout):
        super().__init__(daemon=True)
        self.a, self.query, self.timeout, self.body = a, query, timeout, ""
        self.start()

    def run(self):
        try:
            self.body = fcgi_get(self.a["socket"], self.a["script"], self.query, self.timeout)
        except OSError as e:
            self.body = f"error={e}"


class _Peak(threading.Thread):
    """The most processes a uid had at once, sampled every 100 ms."""

    def __init__(self, uid):
        super().__init__(daemon=True)
        self.uid, self.peak, self.stop = uid, 0, False
        self.start()

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, len(_uid_pids(self.uid)))
            time.sleep(0.1)


def _host_oom_kills():
    m = re.search(r"^oom_kill (\d+)", _read("/proc/vmstat") or "", re.M)
    return int(m.group(1)) if m else None


def _phase(binary, server, case, v, a, dur, secs, commands):
    """One measurement of the victim, with the attack `case` running."""
    rec = {"section": "noisy", "case": case, "server": server, "round": 1,
           "fork_cap": FORK_CAP, "hog_mb": a["hog_mb"]}
    apid = min(_uid_pids(a["php_uid"]) or [0])
    vpids = _uid_pids(v["php_uid"])
    lim = _limits(apid) if apid else {}
    rec["attacker_limits"] = lim
    mem_cg = lim.get("memory_cgroup")
    oom0 = _oom_kills(mem_cg)
    host0 = _host_oom_kills()
    voom0 = _oom_kills(_cgroup_dir(min(vpids or [0]), "memory")) if vpids else None
    attack = None
    fork = None
    hog = None
    native = f"native={a['native']}&home={a['home']}"
    if case == "cpu":
        cmd = [binary, "bench", "-t", f"unix:{a['socket']}", "-s", a["script"],
               "-q", "probe=burn&ms=200", "-c", str(a["max_children"]), "-d", f"{secs + 2}s",
               "--timeout", "30s", "--json"]
        attack = _Background(cmd)
        commands.append(" ".join(cmd) + "   # attacker, in the background")
    elif case == "mem":
        q = f"probe=native&timeout=60&{native}&a0=memhog&a1={a['hog_mb']}"
        hog = _HogLoop(a, q, secs + 2)
        commands.append(f"GET {a['script']}?{q}   # attacker, one after the other (bench.py fcgi_get)")
    elif case == "fork":
        q = (f"probe=native&timeout=60&{native}&a0=forkbomb&a1={FORK_CAP}"
             f"&a2={int((secs + 2) * 1000)}&a3=burn")
        fork = _AttackerRequest(a, q, secs + 60)
        commands.append(f"GET {a['script']}?{q}   # attacker, one request (bench.py fcgi_get)")
    sampler = _Peak(a["php_uid"])
    if case != "alone":
        time.sleep(1)
    peak = len(_uid_pids(a["php_uid"]))
    res, cmd = _bench(binary, v["socket"], v["script"], "do=cpu&n=" + str(v["n"]), 1, dur,
                      "1s" if case == "alone" else "0s")
    peak = max(peak, len(_uid_pids(a["php_uid"])))
    if case == "alone":
        commands.append(cmd + "   # the victim, alone and during each attack")
    lat = res.get("latency_us", {})
    rec.update({"rps": res.get("rps"), "requests": res.get("requests"),
                "errors": res.get("errors_total"), "first_error": res.get("first_error"),
                "lat_ms": {k: (x / 1000.0 if x is not None else None) for k, x in lat.items()}})
    if attack:
        ar = attack.result(secs + 90)
        rec["attacker_requests"] = ar.get("requests")
        rec["attacker_errors"] = ar.get("errors_total")
        rec["attacker_status"] = ar.get("status_codes")
    if hog:
        hog.stop = True
        hog.join(90)
        rec["hogs_completed"], rec["hogs_killed"], rec["hogs_other"] = hog.done, hog.killed, hog.other
        rec["hog_last"] = hog.last[:300]
    if fork:
        fork.join(secs + 70)
        kv = dict(l.split("=", 1) for l in fork.body.splitlines() if "=" in l)
        rec["forks"] = int(kv["n_forked"]) if kv.get("n_forked", "").isdigit() else None
        rec["fork_error"] = kv.get("n_fork_error") or kv.get("native_refused") or fork.body[:200]
    sampler.stop = True
    sampler.join()
    rec["attacker_peak_procs"] = max(peak, sampler.peak)
    oom1 = _oom_kills(mem_cg)
    rec["attacker_oom_kills"] = (oom1 - oom0) if oom0 is not None and oom1 is not None else None
    vpids_now = _uid_pids(v["php_uid"])
    voom1 = _oom_kills(_cgroup_dir(min(vpids_now or [0]), "memory")) if vpids_now else None
    rec["victim_oom_kills"] = (voom1 - voom0) if voom0 is not None and voom1 is not None else None
    # OOM kills anywhere on the host that were not in the attacker's cgroup.
    host1 = _host_oom_kills()
    att = rec["attacker_oom_kills"] or 0
    rec["oom_kills_elsewhere"] = (host1 - host0 - att) if host0 is not None and host1 is not None else None
    time.sleep(1)
    return rec


def cmd_noisy(binary, root, out_dir, dur="8s"):
    secs = float(dur.rstrip("s"))
    pid = os.getpid()
    ua, uv = f"cbna-{pid}", f"cbnv-{pid}"
    sb = tempfile.mkdtemp(prefix="corral-bench-noisy-", dir="/var/lib")
    os.chmod(sb, 0o755)
    for d in ("home", "pool.d", "fpm-pool.d", "nginx", "state", "run", "templates", "log", "bin"):
        os.makedirs(f"{sb}/{d}", exist_ok=True)
        os.chmod(f"{sb}/{d}", 0o755)
    servers = []
    rows = []
    commands = []
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "dur": dur,
            "corral_rev": os.environ.get("BENCH_REV", "?"),
            "note": os.environ.get("BENCH_NOTE", ""),
            "fork_cap": FORK_CAP, "loadavg": " ".join(_read("/proc/loadavg").split()[:3])}
    try:
        env = dict(os.environ, PHP_INI_SCAN_DIR=PHP_SCAN_DIR)
        conf = f"{sb}/corral.conf"
        with open(conf, "w") as f:
            f.write(f"[global]\nerror_log = {sb}/log/corral.log\nprocess_control_timeout = 2s\n"
                    f"include = {sb}/pool.d/*.conf\n\n[keeper]\nlisten = {sb}/run/keeper.sock\n"
                    "user = nobody\npm = static\npm.max_children = 1\n")
        ctl = f"{sb}/run/control.sock"
        argv = [binary, "-F", "-c", PHP_INI, "-y", conf, "--control-socket", ctl]
        commands.append("PHP_INI_SCAN_DIR=%s %s" % (PHP_SCAN_DIR, " ".join(argv)))
        corral = _Server(argv, f"{sb}/log/corral.out", env)
        servers.append(corral)
        senv = dict(env, **{f"CORRAL_SITES_{k}": v for k, v in {
            "HOME_BASE": f"{sb}/home", "POOL_DIR": f"{sb}/pool.d", "SOCKET_DIR": f"{sb}/run",
            "NGINX_DIR": f"{sb}/nginx", "STATE_DIR": f"{sb}/state",
            "TEMPLATE_DIR": f"{sb}/templates", "CONTROL_SOCKET": ctl, "FPM_CONFIG": conf,
            "WEBSERVER_TEST": "true", "WEBSERVER_RELOAD": "true", "NO_VERIFY": "1",
            "LISTEN": "127.0.0.1:1"}.items()})
        dv, da = f"victim{pid}.bench", f"attacker{pid}.bench"
        add = [binary, "site", "add", dv, "--user", uv, "--template", "wordpress"]
        commands.append(" ".join(add))
        _run(add, env=senv)
        vpool = f"{sb}/pool.d/{dv}.conf"
        add = [binary, "site", "add", da, "--user", ua, "--template", "wordpress",
               "--set", "corral.allow_functions=" + " ".join(EXEC_FUNCTIONS),
               "--set", "open_basedir=/"]
        commands.append(" ".join(add) + "   # as in tests/pens.rs: exec functions back, open_basedir off")
        _run(add, env=senv)
        apool = f"{sb}/pool.d/{da}.conf"

        def tenant(dom, user):
            import pwd
            p = pwd.getpwnam(f"{user}-php")
            o = pwd.getpwnam(user)
            home = f"{sb}/home/{user}"
            return {"domain": dom, "user": user, "home": home, "php_uid": p.pw_uid,
                    "uid": o.pw_uid, "gid": o.pw_gid,
                    "docroot": f"{home}/htdocs/{dom}", "socket": f"{sb}/run/corral-{dom}.sock"}
        v, a = tenant(dv, uv), tenant(da, ua)

        def install(src, dst, t, mode):
            shutil.copyfile(src, dst)
            os.chown(dst, t["uid"], t["gid"])
            os.chmod(dst, mode)
        install(f"{root}/tests/php/pens_victim.php", f"{v['docroot']}/pens_victim.php", v, 0o640)
        install(f"{root}/tests/php/pens_attacker.php", f"{a['docroot']}/pens_attacker.php", a, 0o640)
        os.makedirs(f"{a['home']}/bin")
        os.chown(f"{a['home']}/bin", a["uid"], a["gid"])
        os.chmod(f"{a['home']}/bin", 0o2750)
        _run(["gcc", "-O1", "-o", f"{sb}/bin/pens-native", f"{root}/tests/native/pens_native.c"])
        install(f"{sb}/bin/pens-native", f"{a['home']}/bin/pens-native", a, 0o750)
        v["script"] = f"{v['docroot']}/pens_victim.php"
        a["script"] = f"{a['docroot']}/pens_attacker.php"
        a["native"] = f"{a['home']}/bin/pens-native"
        a["max_children"] = int(_pool_value(apool, "pm.max_children") or 5)
        limit = _size_mb(_pool_value(apool, "php_admin_value[memory_limit]")) or 128
        pool_max = _size_mb(_pool_value(apool, "corral.memory_max"))
        a["hog_mb"] = min(3072, max(limit + 1024, (pool_max or 0) + 256))
        # The victim's page: about 5 ms of CPU alone.
        v["n"] = 200000
        r, _ = _bench(binary, v["socket"], v["script"], f"do=cpu&n={v['n']}", 1, "1s")
        p50 = (r.get("latency_us", {}).get("p50") or 5000) / 1000.0
        v["n"] = max(20000, int(v["n"] * 5.0 / max(p50, 0.1)))
        meta.update({"victim_n": v["n"], "attacker_max_children": a["max_children"],
                     "hog_mb": a["hog_mb"], "pool_files": {}})
        for name, path in (("victim", vpool), ("attacker", apool)):
            with open(path) as f:
                meta["pool_files"][name] = f.read().replace(sb, "$S")

        for server in ("corral", "php-fpm"):
            if server == "php-fpm":
                corral.stop()
                servers.remove(corral)
                for src in (vpool, apool):
                    with open(src) as f:
                        lines = [l for l in f if not l.lstrip().startswith("corral.")]
                    dst = f"{sb}/fpm-pool.d/{os.path.basename(src)}"
                    with open(dst, "w") as f:
                        f.writelines(lines)
                fconf = f"{sb}/php-fpm.conf"
                with open(fconf, "w") as f:
                    f.write(f"[global]\nerror_log = {sb}/log/php-fpm.log\n"
                            f"include = {sb}/fpm-pool.d/*.conf\n")
                argv = [FPM_BIN, "-F", "-c", PHP_INI, "-y", fconf]
                commands.append("PHP_INI_SCAN_DIR=%s %s   # the same pool files without corral.* lines"
                                % (PHP_SCAN_DIR, " ".join(argv)))
                fpm = _Server(argv, f"{sb}/log/php-fpm.log", env)
                servers.append(fpm)
            # Warm both pools (OPcache, a second worker).
            _bench(binary, v["socket"], v["script"], f"do=cpu&n={v['n']}", 2, "1s")
            _bench(binary, a["socket"], a["script"], "probe=burn&ms=5", 2, "1s")
            for case in NOISY_CASES:
                _log(f"{server}: victim {case}")
                rec = _phase(binary, server, case, v, a, dur, secs, commands if server == "corral" else [])
                rows.append(rec)
                _log(f"  p50 {fmt(get(rec, 'lat_ms.p50'), 2)} ms, p99 {fmt(get(rec, 'lat_ms.p99'), 2)} ms,"
                     f" errors {rec.get('errors')}, attacker OOM kills {rec.get('attacker_oom_kills')},"
                     f" peak attacker processes {rec.get('attacker_peak_procs')}")
    finally:
        for s in servers:
            s.stop()
        for u in (ua, uv):
            for name in (f"{u}-php", u):
                subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        time.sleep(0.2)
        for u in (ua, uv):
            for name in (f"{u}-php", u):
                subprocess.run(["userdel", name], capture_output=True)
            subprocess.run(["groupdel", u], capture_output=True)
        shutil.rmtree(sb, ignore_errors=True)
    meta["commands"] = "\n".join(commands).replace(sb, "$S").replace(root.rstrip("/") + "/", "")
    os.makedirs(out_dir, exist_ok=True)
    with open(f"{out_dir}/noisy.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    with open(f"{out_dir}/noisy-meta.json", "w") as f:
        json.dump(meta, f, indent=1)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"mem": cmd_mem, "emit": cmd_emit, "memsummary": cmd_memsummary, "peak": cmd_peak, "listening": cmd_listening, "wrk": cmd_wrk, "cold": cmd_cold,
          "report": cmd_report, "noisy": cmd_noisy}.get(cmd)
    if fn is None:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    fn(*args)


if __name__ == "__main__":
    main()
