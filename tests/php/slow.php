<?php
// Nested user functions around sleep(): the slow log must name every frame.
// ?s=N sleeps N seconds (default 3). Line numbers are asserted by the tests
// (they look up the MARK comments, so edit freely but keep the markers).
header('Content-Type: text/plain');

function inner($s)
{
    sleep($s); // MARK:sleep
    return $s;
}

function outer($s)
{
    return inner($s); // MARK:inner
}

echo "slept=", outer((int)($_GET['s'] ?? 3)), "\n"; // MARK:outer
