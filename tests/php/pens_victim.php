<?php
// The victim's page in the hostile-tenant suite (crates/corral/tests/pens.rs)
// and the noisy-neighbour benchmark (bench/): an ordinary site's requests.
//   ?do=sleep&tok=T&s=N   an in-flight request whose URI carries a secret
//   ?do=session&secret=S  a session holding a secret (file in sessions/)
//   ?do=cpu&n=N           CPU-bound work (the benchmark's victim page)
//   default               who serves this pool
header('Content-Type: text/plain');
switch ($_GET['do'] ?? '') {
case 'sleep':
    usleep((int)(1e6 * (float)($_GET['s'] ?? '3')));
    echo "slept\n";
    break;
case 'session':
    session_start();
    $_SESSION['secret'] = (string)($_GET['secret'] ?? '');
    echo 'session=', session_id(), "\n";
    session_write_close();
    break;
case 'cpu':
    $n = (int)($_GET['n'] ?? 200000);
    $x = 0;
    for ($i = 0; $i < $n; $i++) {
        $x = ($x * 31 + $i) % 1000003;
    }
    echo "cpu=$x\n";
    break;
default:
    echo 'victim ok pid=', getmypid(), ' uid=', function_exists('posix_getuid') ? posix_getuid() : getmyuid(), "\n";
}
