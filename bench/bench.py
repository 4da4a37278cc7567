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
"""
import json
import os
import re
import statistics
import sys

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
    add("PSS per idle worker, KiB", "memory", "static", "idle_worker_pss", 0, "", True)
    add("PSS per worker after load, KiB", "memory", "static", "busy_worker_pss", 0, "", True)
    add("master PSS, KiB", "memory", "static", "master_pss", 0, "", True)
    add(f"{meta.get('pools')} ondemand pools: total PSS idle, KiB", "density", "pools",
        "total_pss", 0, "", True)
    add(f"{meta.get('pools')} ondemand pools: start-up s", "density", "pools", "startup_s",
        2, "", True)
    add("cold first request, ms", "density", "pools", "cold_ms_median", 1, "", True)
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


def cmd_report(dirname, out_md):
    rows, meta = load(dirname)
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
        ["DokuWiki / WordPress", f"{meta['dokuwiki']} / {meta['wordpress']}"],
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
    w(table(["what", "php-fpm", "corral", "corral/php-fpm", "better"], summary(rows, meta)))
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
      " after a short warm-up.\n")
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
    w(f"DokuWiki (Debian `dokuwiki`, page `{meta['doku_url']}`) and WordPress (Debian"
      " `wordpress`, MariaDB, freshly installed by the harness, front page with the default"
      f" post, `DISABLE_WP_CRON`), `wrk -t2 -c {meta['app_c']} -d {meta['app_dur']}"
      " --latency`.\n")
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
      " median of those.\n")
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
                           ("procs_after", "processes after the cold requests", 0)):
        f = med(rows, "density", "pools", "php-fpm", key)
        k = med(rows, "density", "pools", "corral", key)
        body.append([label, fmt(f, nd), fmt(k, nd), ratio(k, f)])
    w(table(["", "php-fpm", "corral", "ratio"], body))
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

    w("## Exact commands\n")
    w("Reproduce everything with `sudo bench/run.sh` (`BENCH_QUICK=1` for a ~3 minute smoke"
      " run; `BENCH_ROUNDS`, `BENCH_POOLS`, `BENCH_WORKERS`, `BENCH_DURATION` override the"
      " defaults). The commands this run executed, in order (first round shown; later"
      " rounds repeat them):\n")
    w("`$W` is the run's temp dir (configs, sockets, logs); the php-fpm and corral"
      " configs and nginx.conf are copied to `bench/results/configs/`. Repeated"
      " commands (warm-ups, later rounds) are listed once.\n")
    w("```")
    seen = set()
    for line in meta.get("commands", "").splitlines():
        line = line.replace(meta.get("workdir", "\0"), "$W")
        if line not in seen:
            seen.add(line)
            w(line)
    w("```\n")
    w("Raw per-round results: `bench/results/results.jsonl`; configs used:"
      " `bench/results/configs/`.\n")
    with open(out_md, "w") as f:
        f.write("\n".join(md))


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"mem": cmd_mem, "emit": cmd_emit, "memsummary": cmd_memsummary, "peak": cmd_peak, "listening": cmd_listening, "wrk": cmd_wrk, "cold": cmd_cold,
          "report": cmd_report}.get(cmd)
    if fn is None:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    fn(*args)


if __name__ == "__main__":
    main()
