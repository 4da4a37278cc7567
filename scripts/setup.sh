#!/usr/bin/env bash
# Installs what corral needs to build and what its tests run against, on
# Debian 12 (bookworm). Idempotent: does nothing when everything is there.
#
#   sudo scripts/setup.sh
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  php8.2-dev          # php-config, headers for the SAPI shim
  libphp8.2-embed     # libphp8.2.so, the PHP engine corral embeds
  php8.2-fpm          # the reference php-fpm8.2 the tests compare against
  php8.2-opcache
  php8.2-cli
  nginx               # end-to-end tests and the demo
  apache2             # corral site --webserver apache end-to-end test
  patchelf
  acl                 # setfacl/getfacl for listen.acl_users
  libfcgi-bin         # cgi-fcgi, handy for poking sockets by hand
  e2fsprogs           # mkfs.ext4 for the disk-quota test's loop image
  quota               # quotacheck/quotaon, to turn quotas on for --disk-quota
  curl
  logrotate           # the .deb's logrotate file, run by the package test; per-site logrotate files
  openssl             # self-signed certificates for the site TLS tests; --tls checks the name
  certbot             # corral site add --certbot (webroot mode), tested against pebble
  pebble              # a local ACME server (and its mock DNS) for the certbot test, loopback only
  dpkg-dev            # dpkg-shlibdeps, for scripts/deb.sh's Depends line
  prometheus          # the metrics test scrapes corral with a real Prometheus
  chromium            # the dashboard test loads the page headless
  fonts-dejavu-core   # text in the dashboard screenshot
  tmux                # the corral top test drives the terminal view
  mariadb-server      # browser_sites: WordPress's database (a private mariadbd per test)
  mariadb-client
  php8.2-mysql
  wordpress           # browser_sites: the owner copies /usr/share/wordpress into the site
  wordpress-theme-twentytwentythree
  php-laravel-framework # browser_sites: a small Laravel app on Debian's autoloaders
  openssh-server      # corral site --sftp-key: chrooted SFTP for site owners (sshd drop-in)
  openssh-client      # sftp/ssh/ssh-keygen, the real client the SFTP test drives
  build-essential
  pkg-config
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -E "$@"
  else
    echo "setup.sh: need root to run: $*" >&2
    exit 1
  fi
}

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  # Packages like nginx and php8.2-fpm start their services on install;
  # we start our own instances, so keep the package scripts from doing it
  # (and from failing where there is no init system).
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    added_policy=1
  fi
  cleanup() { if [ "$added_policy" = 1 ]; then as_root rm -f "$policy"; fi; }
  trap cleanup EXIT
  as_root apt-get update
  as_root apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "setup.sh: all Debian packages present"
fi

# node + npm for the browser walks (playwright-core drives Debian's
# chromium). A machine with its own node (e.g. NodeSource's, which bundles
# npm) keeps it; otherwise Debian's nodejs and npm.
if ! command -v npm >/dev/null 2>&1; then
  if command -v node >/dev/null 2>&1 && ! dpkg-query -W -f='${Version}' nodejs 2>/dev/null | grep -q deb12; then
    echo "setup.sh: node $(node -v) is not Debian's and has no npm; install npm for it" >&2
    exit 1
  fi
  echo "setup.sh: installing nodejs npm"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
fi

# playwright-core for crates/corral/tests/browser, from its lockfile; run
# again only when the lockfile changed.
walks=crates/corral/tests/browser
walks_dir="$(cd "$(dirname "$0")/.." && pwd)/$walks"
stamp="$walks_dir/node_modules/.corral-lock-sha256"
want="$(sha256sum "$walks_dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -f "$walks_dir/node_modules/playwright-core/package.json" ]; then
  echo "setup.sh: npm ci in $walks"
  (cd "$walks_dir" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
else
  echo "setup.sh: $walks/node_modules up to date"
fi

# Rust: CI and developer machines have rustup's cargo; fall back to
# Debian's packages only when there is no cargo at all.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  echo "setup.sh: no cargo found, installing Debian's cargo/rustc (may be older than rust-version in Cargo.toml)"
  as_root apt-get install -y --no-install-recommends cargo rustc
fi
echo "setup.sh: done"
