<?php
// Answers, calls fastcgi_finish_request(), then keeps working: the client
// must get the response before the marker file (?marker=path) is written.
header('Content-Type: text/plain');
echo "before-finish\n";
$r = fastcgi_finish_request();
echo "after-finish-must-not-be-sent\n";
usleep(((int)($_GET['sleep_ms'] ?? 0)) * 1000);
if (isset($_GET['marker'])) {
    file_put_contents($_GET['marker'], $r ? "finished" : "not-finished");
}
