#!/usr/bin/env python3
"""Split the callgrind files bench/appcost.sh leaves into per-request costs.

    python3 bench/appcost.py [CG_DIR] [APP]   (default /var/tmp/corral-appcost/cg, wp and doku)

For each app and server it differences the worker's self cost per function
between the N1 and N2 runs (start-up, warm-up and shutdown cancel), divides
by N2-N1, groups it by object (PHP = libphp8.2.so or php-fpm8.2, libc, the
server's own code) and lists the functions whose per-request cost differs
most between php-fpm and corral, matched by name whichever object holds
them (PHP's functions live in php-fpm8.2 for one and libphp8.2.so for the
other).
"""

import collections
import glob
import os
import re
import subprocess
import sys

LINE = re.compile(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)$")
OBJ = re.compile(r"^(.*?)\s+\[(.*?)\]\s*$")


def self_costs(path):
    """function -> (object, self instructions) from callgrind_annotate."""
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--auto=no", path],
        capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        n = int(m.group(1).replace(",", ""))
        name, obj = m.group(2), "?"
        o = OBJ.match(name)
        if o:
            name, obj = o.group(1), os.path.basename(o.group(2))
        # Drop the source file: the same function is in different files'
        # debug info (or none) for the two builds.
        name = name.split(":", 1)[1] if ":" in name and not name.startswith("0x") else name
        key = (obj, name)
        costs[key] = costs.get(key, 0) + n
    return costs


def group(obj, name):
    if obj in ("libphp8.2.so", "php-fpm8.2") or obj.startswith("opcache") or obj.endswith(".so") and "php" in obj:
        return "PHP (libphp8.2.so or php-fpm8.2 with fpm, opcache.so)"
    if obj.startswith("libc.so") or obj.startswith("ld-linux"):
        if re.search(r"malloc|free|realloc|calloc|memalign|_int_|tcache", name):
            return "libc malloc/free"
        if re.search(r"mem(set|cpy|move|cmp)|str", name):
            return "libc mem*/str*"
        return "libc other"
    if obj == "corral" or (obj == "?" and ("::" in name or "corral" in name or name == "import_params")):
        return "corral's own code (Rust and C shim)"
    return "other (" + obj + ")"


def per_request(outdir, app, tag):
    runs = sorted(
        (int(m.group(1)), f) for f in glob.glob(f"{outdir}/{app}-{tag}-*.worker")
        if (m := re.search(r"-(\d+)\.worker$", f)))
    if len(runs) < 2:
        return None
    (n1, w1), (n2, w2) = runs[0], runs[-1]
    a = self_costs(f"{outdir}/{app}-{tag}-{n1}.{open(w1).read().strip()}")
    b = self_costs(f"{outdir}/{app}-{tag}-{n2}.{open(w2).read().strip()}")
    return {k: (b.get(k, 0) - a.get(k, 0)) / (n2 - n1) for k in set(a) | set(b)}, (n1, n2)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/corral-appcost/cg"
    apps = [sys.argv[2]] if len(sys.argv) > 2 else ["wp", "doku"]
    for app in apps:
        res = {t: per_request(outdir, app, t) for t in ("fpm", "corral")}
        if not all(res.values()):
            print(f"{app}: callgrind files missing in {outdir}")
            continue
        print(f"## {app} (N = {res['fpm'][1]}, {res['corral'][1]})")
        groups = {t: collections.Counter() for t in res}
        for t, (d, _) in res.items():
            for (obj, name), v in d.items():
                groups[t][group(obj, name)] += v
        tot = {t: sum(g.values()) for t, g in groups.items()}
        print(f"| | php-fpm | corral | corral - php-fpm |\n|---|---:|---:|---:|")
        print(f"| **total** | {tot['fpm']:,.0f} | {tot['corral']:,.0f} | {tot['corral'] - tot['fpm']:+,.0f} |")
        for g in sorted(set(groups["fpm"]) | set(groups["corral"]), key=lambda g: -max(groups["fpm"][g], groups["corral"][g])):
            f, c = groups["fpm"][g], groups["corral"][g]
            if max(abs(f), abs(c)) >= 50:
                print(f"| {g} | {f:,.0f} | {c:,.0f} | {c - f:+,.0f} |")
        for t in res:
            g = groups[t]
            php = sum(v for k, v in g.items() if k.startswith("PHP"))
            mem = g["libc mem*/str*"]
            mal = g["libc malloc/free"]
            own = g["corral's own code (Rust and C shim)"]
            print(f"summary {t}: total {tot[t]:,.0f} PHP {php:,.0f} libc-mem {mem:,.0f} "
                  f"libc-malloc {mal:,.0f} own {own:,.0f} rest {tot[t] - php - mem - mal - own:,.0f}")
        by_name = {t: collections.Counter() for t in res}
        for t, (d, _) in res.items():
            for (obj, name), v in d.items():
                by_name[t][name] += v
        print("\nlargest differences by function (self, per request):")
        names = set(by_name["fpm"]) | set(by_name["corral"])
        for n in sorted(names, key=lambda n: -abs(by_name["corral"][n] - by_name["fpm"][n]))[:30]:
            f, c = by_name["fpm"][n], by_name["corral"][n]
            print(f"  {c - f:+12,.0f}   fpm {f:12,.0f}  corral {c:12,.0f}  {n[:110]}")
        print()


if __name__ == "__main__":
    main()
