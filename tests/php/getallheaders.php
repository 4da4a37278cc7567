<?php
// getallheaders(), sorted by name; ?order=sapi keeps the SAPI's own order.
header('Content-Type: text/plain');
$h = getallheaders();
if (($_GET['order'] ?? '') !== 'sapi') {
    ksort($h);
}
foreach ($h as $k => $v) {
    echo $k, ": ", $v, "\n";
}
