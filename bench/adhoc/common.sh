# Sourced by the A/B scripts here: a temp dir with hello.php and one static
# pool of 4 workers served by php-fpm 8.2 or corral ($BIN, default the
# release build), both with Debian's fpm php.ini. Sets D (the dir) and P
# (the server's pid). $1: fpm|corral; $2: an extra pool line.
start_pool() {
  local mode=$1 extra=$2
  B=${BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/corral}
  D=$(mktemp -d /tmp/corral-adhoc.XXXXXX); mkdir -p $D/run $D/log $D/www; chmod 755 $D $D/www
  echo '<?php echo "hello\n";' > $D/www/hello.php
  printf "[global]\nerror_log = $D/log/err.log\npid = $D/run/pid\n[www]\nuser = www-data\ngroup = www-data\nlisten = $D/run/s.sock\n$extra\npm = static\npm.max_children = 4\n" > $D/conf
  if [ "$mode" = fpm ]; then /usr/sbin/php-fpm8.2 -F -y $D/conf -c /etc/php/8.2/fpm/php.ini >$D/log/out 2>&1 &
  else $B -F -y $D/conf -c /etc/php/8.2/fpm/php.ini >$D/log/out 2>&1 & fi
  P=$!
}
