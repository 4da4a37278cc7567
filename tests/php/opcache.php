<?php
// OPcache counters of the serving pool, the worker pid and a few ini values.
// One "key=value" per line. ?sleep_ms=N sleeps first.
usleep(((int)($_GET['sleep_ms'] ?? 0)) * 1000);
$st = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
header('Content-Type: text/plain');
echo "pid=", getmypid(), "\n";
echo "enabled=", ($st && !empty($st['opcache_enabled'])) ? "1" : "0", "\n";
echo "hits=", $st ? $st['opcache_statistics']['hits'] : -1, "\n";
echo "start_time=", $st ? $st['opcache_statistics']['start_time'] : -1, "\n";
echo "memory_limit=", ini_get('memory_limit'), "\n";
echo "precision=", ini_get('precision'), "\n";
