<?php
// $_SERVER as pretty JSON, sorted, without values that differ between runs.
$s = $_SERVER;
foreach (['REQUEST_TIME', 'REQUEST_TIME_FLOAT'] as $k) {
    unset($s[$k]);
}
ksort($s);
header('Content-Type: application/json');
echo json_encode(['server' => $s, 'get' => $_GET], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
