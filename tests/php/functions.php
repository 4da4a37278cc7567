<?php
// ?names=a,b prints whether each function exists, one "name=0|1" per line.
header('Content-Type: text/plain');
foreach (explode(',', $_GET['names'] ?? '') as $f) {
    if ($f === '') continue;
    echo $f, "=", function_exists($f) ? "1" : "0", "\n";
}
