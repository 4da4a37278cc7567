<?php
// One probe per request (?p=NAME), run by tests/confine.rs from a pool's
// PHP. Prints `result=...` (and sometimes more key=value lines).
header('Content-Type: text/plain');
$a = $_GET;
function out($k, $v) { echo "$k=$v\n"; }
function run(array $cmd) {
    $p = @proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    if (!is_resource($p)) {
        return 'proc_open failed';
    }
    $o = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
    $code = proc_close($p);
    return trim($o) . " (exit $code)";
}
switch ($a['p'] ?? '') {
case 'tmp_put':
    out('result', @file_put_contents('/tmp/' . $a['name'], 'from-a') ? 'wrote' : 'failed');
    break;
case 'tmp_get':
    out('result', file_exists('/tmp/' . $a['name']) ? 'visible' : 'invisible');
    break;
case 'procs':
    $pids = [];
    foreach (scandir('/proc') as $e) {
        if (ctype_digit($e)) {
            $pids[] = $e;
        }
    }
    out('pids', implode(',', $pids));
    break;
case 'shm_put':
    $id = @shmop_open((int)$a['key'], 'c', 0644, 64);
    out('result', $id && shmop_write($id, 'from-a', 0) ? 'created' : 'failed');
    break;
case 'shm_get':
    $id = @shmop_open((int)$a['key'], 'a', 0, 0);
    out('result', $id ? 'visible:' . rtrim(shmop_read($id, 0, 6)) : 'invisible');
    break;
case 'read':
    out('result', @file_get_contents($a['path']) !== false ? 'read' : 'denied');
    break;
case 'write':
    out('result', @file_put_contents($a['path'], 'from-a') !== false ? 'wrote' : 'denied');
    break;
case 'exec_script':
    $f = $a['dir'] . '/run.sh';
    if (!@file_put_contents($f, "#!/bin/sh\necho ran-script\n") || !chmod($f, 0755)) {
        out('result', 'cannot write the script');
        break;
    }
    $o = run([$f]);
    out('result', str_contains($o, 'ran-script') ? 'ran' : "blocked: $o");
    break;
case 'exec_copy':
    $f = $a['dir'] . '/myid';
    if (!@copy('/usr/bin/id', $f) || !chmod($f, 0755)) {
        out('result', 'cannot copy the binary');
        break;
    }
    // The dynamic loader maps the file instead of executing it (x86_64's
    // or arm64's, whichever this host has).
    $ldso = (glob('/lib64/ld-linux-*.so.*') ?: glob('/lib/ld-linux-*.so.*') ?: ['ld.so'])[0];
    $o = run(isset($a['ldso']) ? [$ldso, $f, '-u'] : [$f, '-u']);
    out('result', preg_match('/^\d+ \(exit 0\)$/', $o) ? 'ran' : "blocked: $o");
    break;
case 'exec_system':
    $o = run(['/usr/bin/id', '-u']);
    out('result', preg_match('/^\d+ \(exit 0\)$/', $o) ? 'ran' : "blocked: $o");
    break;
case 'connect':
    $s = @fsockopen('127.0.0.1', (int)$a['port'], $errno, $errstr, 2);
    out('result', $s ? 'connected' : "denied: $errno $errstr");
    break;
case 'session':
    session_start();
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
    out('n', $_SESSION['n']);
    out('sid', session_id());
    break;
case 'upload':
    $f = $_FILES['f'] ?? null;
    $to = $a['dir'] . '/uploaded.txt';
    $ok = $f && $f['error'] === 0 && move_uploaded_file($f['tmp_name'], $to);
    out('result', $ok ? 'stored:' . file_get_contents($to) : 'failed:' . json_encode($f));
    break;
default:
    out('result', 'unknown probe');
}
