<?php
// ?get=a,b prints ini_get of each; ?set=k:v first tries ini_set (reports the result).
header('Content-Type: text/plain');
if (isset($_GET['set'])) {
    [$k, $v] = explode(':', $_GET['set'], 2);
    $old = ini_set($k, $v);
    echo "set ", $k, "=", $old === false ? "FAILED" : "ok", "\n";
}
foreach (explode(',', $_GET['get'] ?? '') as $k) {
    if ($k === '') continue;
    $v = ini_get($k);
    echo $k, "=", $v === false ? "(false)" : $v, "\n";
}
