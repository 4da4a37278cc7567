<?php
// Who runs this request: SAPI, uid, pid, OPcache state. One "key=value" per line.
$st = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
header('Content-Type: text/plain');
echo "sapi=", php_sapi_name(), "\n";
echo "uid=", posix_getuid(), "\n";
echo "gid=", posix_getgid(), "\n";
echo "pid=", getmypid(), "\n";
echo "opcache=", ($st && !empty($st['opcache_enabled'])) ? "1" : "0", "\n";
echo "version=", PHP_VERSION, "\n";
