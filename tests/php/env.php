<?php
// ?names=A,B prints getenv() of each ("(unset)" when absent).
header('Content-Type: text/plain');
foreach (explode(',', $_GET['names'] ?? '') as $k) {
    if ($k === '') continue;
    $v = getenv($k);
    echo $k, "=", $v === false ? "(unset)" : $v, "\n";
}
