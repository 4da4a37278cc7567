<?php
header('Content-Type: text/plain');
ksort($_COOKIE);
foreach ($_COOKIE as $k => $v) {
    echo $k, "=", $v, "\n";
}
setcookie('out', 'v1');
setcookie('out2', 'v2');
