<?php
header('Content-Type: text/plain');
$h = getallheaders();
ksort($h);
foreach ($h as $k => $v) {
    echo $k, ": ", $v, "\n";
}
