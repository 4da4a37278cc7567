<?php
header('Content-Type: text/plain');
$e = getenv();
ksort($e);
foreach ($e as $k => $v) {
    echo $k, "=", $v, "\n";
}
