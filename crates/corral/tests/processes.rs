//! Process management, users and listening sockets. Most need root.

mod common;

use common::*;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::fd::FromRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::thread;
use std::time::Duration;

#[test]
fn static_spawns_max_children() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&pool_conf("pm.max_children = 3"));
    let n = s.wait_workers(Duration::from_secs(5), |n| n == 3);
    assert_eq!(
        n,
        3,
        "pm=static, max_children=3: workers {:?}",
        s.worker_pids()
    );
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(s.worker_pids().len(), 3, "static pool size must not change");
    let nobody = uid_of("nobody").unwrap();
    for pid in s.worker_pids() {
        let uid = fs::metadata(format!("/proc/{pid}")).unwrap().uid();
        assert_eq!(uid, nobody, "worker {pid} must run as nobody");
    }
}

#[test]
fn dynamic_respects_start_servers() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&pool_conf(
        "pm = dynamic\npm.max_children = 6\npm.start_servers = 2\npm.min_spare_servers = 1\npm.max_spare_servers = 3",
    ));
    assert_eq!(
        s.wait_workers(Duration::from_secs(5), |n| n == 2),
        2,
        "{:?}",
        s.worker_pids()
    );
    // Within [min_spare, max_spare] idle: nothing changes over a few ticks.
    thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        s.worker_pids().len(),
        2,
        "idle=2 is within [1,3]: no spawn, no kill"
    );
}

#[test]
fn dynamic_kills_excess_idle_down_to_max_spare() {
    if !require_root() {
        return;
    }
    // start_servers must be within [min, max]; to get more idle workers than
    // max_spare, load the pool first, then let it calm down.
    let s = Corral::start(&pool_conf(
        "pm = dynamic\npm.max_children = 5\npm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 2",
    ));
    let threads: Vec<_> = (0..5)
        .map(|_| {
            let listen = s.listen().clone();
            let script = s.script("pid.php");
            thread::spawn(move || {
                for _ in 0..3 {
                    let _ = request_on(&listen, &Request::php(&script).query("sleep_ms=1000"));
                }
            })
        })
        .collect();
    let peak = s.wait_workers(Duration::from_secs(8), |n| n >= 3);
    assert!(
        peak >= 3,
        "busy dynamic pool must spawn beyond start_servers: {peak}"
    );
    assert!(s.worker_pids().len() <= 5, "never above max_children");
    for t in threads {
        t.join().unwrap();
    }
    let n = s.wait_workers(Duration::from_secs(10), |n| n <= 2);
    assert!(n <= 2, "idle workers above max_spare must be stopped: {n}");
}

#[test]
fn ondemand_starts_no_worker_until_a_request() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&pool_conf(
        "pm = ondemand\npm.max_children = 3\npm.process_idle_timeout = 2s",
    ));
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        s.worker_pids(),
        Vec::<i32>::new(),
        "ondemand must not start workers before a request"
    );
    let r = s.get("info.php", "");
    assert_eq!(r.status, 200, "{r:?}");
    let pid: i32 = r.kv("pid").unwrap().parse().unwrap();
    let workers = s.worker_pids();
    assert!(
        (1..=3).contains(&workers.len()) && workers.contains(&pid),
        "after one request: {workers:?} should hold {pid}"
    );
    // Idle workers go away after process_idle_timeout.
    let n = s.wait_workers(Duration::from_secs(10), |n| n == 0);
    assert_eq!(
        n, 0,
        "idle ondemand worker must exit after pm.process_idle_timeout"
    );
    assert_eq!(s.get("info.php", "").status, 200, "and come back on demand");
}

#[test]
fn max_requests_replaces_worker() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&pool_conf("pm.max_children = 1\npm.max_requests = 2"));
    let pids: Vec<String> = (0..5).map(|_| s.get("pid.php", "").body).collect();
    assert_eq!(pids[0], pids[1], "{pids:?}");
    assert_ne!(
        pids[1], pids[2],
        "worker must be replaced after 2 requests: {pids:?}"
    );
    assert_eq!(pids[2], pids[3], "{pids:?}");
    assert_ne!(pids[3], pids[4], "{pids:?}");
    s.expect_log(
        &format!("child {} exited with code 0", pids[0]),
        Duration::from_secs(5),
    );
}

fn chown(path: &std::path::Path, uid: u32, gid: u32) {
    let c = CString::new(path.display().to_string()).unwrap();
    // SAFETY: chown on a path we created, with a valid C string.
    let rc = unsafe { libc::chown(c.as_ptr(), uid, gid) };
    assert_eq!(rc, 0, "chown {}", path.display());
}

#[test]
fn two_pools_two_users_are_isolated() {
    if !require_root() {
        return;
    }
    let ua = ensure_system_user("corral-ta");
    let ub = ensure_system_user("corral-tb");
    let gb = gid_of_group("corral-tb").unwrap_or(65534);
    let conf = "[global]\nerror_log = {dir}/error.log\n\n\
                [a]\nlisten = {dir}/a.sock\nuser = corral-ta\npm = static\npm.max_children = 1\n\n\
                [b]\nlisten = {dir}/b.sock\nuser = corral-tb\npm = static\npm.max_children = 1\n";
    let s = Corral::start(conf);
    let secret_dir = temp_dir("secret");
    let secret = secret_dir.path().join("b-only.txt");
    fs::write(&secret, "secret of b").unwrap();
    chown(&secret, ub, gb);
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();

    let info = Request::php(&s.script("info.php"));
    let ra = s.request_to(0, &info);
    let rb = s.request_to(1, &info);
    assert_eq!(
        ra.kv("uid"),
        Some(ua.to_string()),
        "pool a runs as corral-ta: {}",
        ra.body
    );
    assert_eq!(
        rb.kv("uid"),
        Some(ub.to_string()),
        "pool b runs as corral-tb: {}",
        rb.body
    );
    assert_ne!(ra.kv("pid"), rb.kv("pid"));

    let read = Request::php(&s.script("readfile.php")).query(&format!("path={}", secret.display()));
    let ra = s.request_to(0, &read);
    assert!(
        ra.body.starts_with("error:") && ra.body.contains("Permission denied"),
        "pool a must not read b's 0600 file: {}",
        ra.body
    );
    let rb = s.request_to(1, &read);
    assert_eq!(rb.body, "ok:secret of b", "pool b reads its own file");
}

#[test]
fn unix_socket_owner_group_mode() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&pool_conf(
        "listen.owner = www-data\nlisten.group = nogroup\nlisten.mode = 0640",
    ));
    let Listen::Unix(path) = s.listen().clone() else {
        unreachable!()
    };
    let md = fs::metadata(&path).unwrap();
    assert_eq!(md.uid(), uid_of("www-data").unwrap(), "listen.owner");
    assert_eq!(md.gid(), gid_of_group("nogroup").unwrap(), "listen.group");
    assert_eq!(
        md.mode() & 0o777,
        0o640,
        "listen.mode: {:o}",
        md.mode() & 0o777
    );
    assert_eq!(s.get("info.php", "").status, 200);

    // Defaults: owned by the master (root), mode 0660.
    let s = Corral::start(&pool_conf(""));
    let Listen::Unix(path) = s.listen().clone() else {
        unreachable!()
    };
    let md = fs::metadata(&path).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
    assert_eq!(
        md.mode() & 0o777,
        0o660,
        "default listen.mode: {:o}",
        md.mode() & 0o777
    );
}

#[test]
fn listen_owner_applies_acl_users() {
    if !require_root() {
        return;
    }
    if require_bin("getfacl").is_none() {
        return;
    }
    let s = Corral::start(&pool_conf("listen.acl_users = www-data"));
    let Listen::Unix(path) = s.listen().clone() else {
        unreachable!()
    };
    let out = run_cmd(
        &require_bin("getfacl").unwrap(),
        &["-p", &path.display().to_string()],
    );
    assert!(
        out.stdout.contains("user:www-data:rw-"),
        "listen.acl_users: {}",
        out.stdout
    );
}

#[test]
fn tcp_ipv4_and_ipv6() {
    let v6 = have_ipv6();
    let conf = if v6 {
        "[global]\nerror_log = {dir}/error.log\n\
         [v4]\nlisten = 127.0.0.1:{port}\nuser = {user}\npm = static\npm.max_children = 1\n\
         [v6]\nlisten = [::1]:{port6}\nuser = {user}\npm = static\npm.max_children = 1\n"
    } else {
        eprintln!("no IPv6 loopback: testing IPv4 only");
        "[global]\nerror_log = {dir}/error.log\n\
         [v4]\nlisten = 127.0.0.1:{port}\nuser = {user}\npm = static\npm.max_children = 1\n"
    };
    let s = Corral::start(conf);
    let info = Request::php(&s.script("info.php"));
    assert_eq!(
        s.request_to(0, &info).kv("sapi").as_deref(),
        Some("fpm-fcgi")
    );
    if v6 {
        assert!(matches!(s.listens[1], Listen::Tcp(a) if a.is_ipv6()));
        assert_eq!(
            s.request_to(1, &info).kv("sapi").as_deref(),
            Some("fpm-fcgi")
        );
    }
}

/// A TCP connection from a chosen source address (e.g. 127.0.0.2).
fn connect_from(src: [u8; 4], dst: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let std::net::SocketAddr::V4(dst) = dst else {
        panic!("IPv4 only")
    };
    // SAFETY: plain socket/bind/connect on a descriptor we own; it is
    // handed to TcpStream (which closes it) or closed on error.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_ne_bytes(src);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        let mut da: libc::sockaddr_in = std::mem::zeroed();
        da.sin_family = libc::AF_INET as libc::sa_family_t;
        da.sin_port = dst.port().to_be();
        da.sin_addr.s_addr = u32::from_ne_bytes(dst.ip().octets());
        if libc::connect(fd, &da as *const _ as *const libc::sockaddr, len) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

#[test]
fn allowed_clients_refuses_others() {
    let s = Corral::start(&pool_conf(
        "listen = 127.0.0.1:{port}\nlisten.allowed_clients = 127.0.0.2\npm.max_children = 1\ncatch_workers_output = yes",
    ));
    let Listen::Tcp(addr) = s.listen().clone() else {
        panic!("tcp")
    };
    let listen = Listen::Tcp(addr);
    let req = Request::php(&s.script("info.php"));
    let refused = request_on(&listen, &req);
    assert!(
        refused.is_err(),
        "a 127.0.0.1 client must be dropped when only 127.0.0.2 is allowed: {refused:?}"
    );
    s.expect_log(
        "Connection disallowed: IP address '127.0.0.1' has been dropped.",
        Duration::from_secs(5),
    );
    // The allowed address gets served (positive control).
    let conn = connect_from([127, 0, 0, 2], addr).expect("connect from 127.0.0.2");
    conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut client = Client::new(conn);
    let r = Reply::from_response(client.request(&req).expect("127.0.0.2 is allowed"));
    assert_eq!(r.kv("sapi").as_deref(), Some("fpm-fcgi"));
}

#[test]
fn catch_workers_output() {
    let s = Corral::start(&pool_conf("catch_workers_output = yes"));
    let r = s.get("stderr.php", "msg=hello-from-the-worker-42");
    assert_eq!(r.body, "written\n");
    let line = s.expect_log(
        "said into stderr: \"hello-from-the-worker-42\"",
        Duration::from_secs(5),
    );
    assert!(
        line.contains("WARNING: [pool www] child ")
            && line.ends_with("said into stderr: \"hello-from-the-worker-42\""),
        "php-fpm format `WARNING: [pool www] child N said into stderr: \"…\"`, got {line:?}"
    );
    // Without catch_workers_output the output is discarded.
    let s = Corral::start(&pool_conf(""));
    s.get("stderr.php", "msg=must-not-appear-77");
    thread::sleep(Duration::from_millis(500));
    assert!(!s.log_contains("must-not-appear-77"), "{}", s.log.text());
}

#[test]
fn catch_workers_output_undecorated() {
    let s = Corral::start(&pool_conf(
        "catch_workers_output = yes\ndecorate_workers_output = no",
    ));
    s.get("stderr.php", "msg=raw-line-99");
    let line = s.expect_log("raw-line-99", Duration::from_secs(5));
    assert_eq!(
        line, "raw-line-99",
        "decorate_workers_output = no writes the raw line"
    );
}

#[test]
fn root_without_user_is_refused() {
    if !require_root() {
        return;
    }
    let conf = "[global]\nerror_log = {dir}/error.log\n[www]\nlisten = {dir}/www.sock\npm = static\npm.max_children = 1\n";
    let err = match Corral::try_start(conf) {
        Ok(_) => panic!("as root, a pool without user= must not start (without -R)"),
        Err(log) => log,
    };
    assert!(
        err.contains("[pool www] user has not been defined"),
        "{err}"
    );
    // -R allows it: workers then run as root.
    let s = Corral::start_args(conf, &["-R"]);
    let r = s.get("info.php", "");
    assert_eq!(r.kv("uid").as_deref(), Some("0"));
}

/// A reload (SIGUSR2, as `systemctl reload` sends) must pick up php.ini
/// changes, as php-fpm's does (it re-executes itself), while the socket
/// keeps accepting: deployments rely on it, e.g. to reset OPcache.
#[test]
fn reload_on_sigusr2_applies_php_ini_and_keeps_serving() {
    let ini = temp_dir("ini");
    let ini_file = ini.path().join("php.ini");
    fs::write(&ini_file, "precision = 5\n").unwrap();
    let ini_dir = ini.path().display().to_string();
    let s = Corral::start_args(&pool_conf("pm.max_children = 1"), &["-c", &ini_dir]);
    let r = s.get("ini.php", "get=precision");
    assert_eq!(
        r.kv("precision").as_deref(),
        Some("5"),
        "-c {ini_dir}: {}",
        r.body
    );
    fs::write(&ini_file, "precision = 6\n").unwrap();
    s.signal(libc::SIGUSR2);
    s.expect_log("Reloading in progress", Duration::from_secs(5));
    // The socket is never unbound: requests keep working during and after.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while std::time::Instant::now() < deadline {
        let req = Request::php(&s.script("ini.php")).query("get=precision");
        match s.try_request(&req) {
            Ok(r) => {
                assert_eq!(r.status, 200);
                seen = r.kv("precision").unwrap_or_default();
                if seen == "6" {
                    break;
                }
            }
            Err(e) => panic!("request failed during reload: {e}\n{}", s.log.text()),
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        seen,
        "6",
        "php.ini change not applied by the reload\n{}",
        s.log.text()
    );
    let _ = std::io::stderr().flush();
}

/// What a `[::]` pool with `allowed_clients` did for an IPv4 and an IPv6
/// client: (served?, access-log client field) for each.
fn dual_stack_clients(kind: Kind, allowed: &str) -> Vec<(bool, Option<String>)> {
    let conf = pool_conf(&format!(
        "listen = [::]:{{port}}\nlisten.allowed_clients = {allowed}\naccess.log = {{dir}}/access.log"
    ));
    let s = Server::start(kind, &conf, None, &[]);
    let port = s.placeholders.port;
    let req = Request::php(&s.script("info.php")).document_root(&s.www().display().to_string());
    let mut out = Vec::new();
    for client in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let before = fs::read_to_string(s.dir().join("access.log")).unwrap_or_default();
        let served = request_on(&Listen::Tcp(client.parse().unwrap()), &req).is_ok();
        thread::sleep(Duration::from_millis(200));
        let after = fs::read_to_string(s.dir().join("access.log")).unwrap_or_default();
        let logged = after[before.len()..]
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_string);
        out.push((served, logged));
    }
    out
}

/// On a dual-stack `[::]` socket an IPv4 client is `127.0.0.1`, not
/// `::ffff:127.0.0.1`: allowed_clients admits it by its IPv4 address and
/// the access log names it so (php-fpm's fcgi_get_last_client_ip).
#[test]
fn dual_stack_ipv4_clients_are_their_ipv4_address() {
    if !have_ipv6() {
        return skip("no IPv6 loopback");
    }
    let v4 = (true, Some("127.0.0.1".to_string()));
    let v6 = (true, Some("::1".to_string()));
    let refused = (false, None);
    let mut kinds = vec![Kind::Corral];
    if require_php_fpm().is_some() {
        kinds.push(Kind::PhpFpm);
    }
    for kind in kinds {
        assert_eq!(
            dual_stack_clients(kind, "127.0.0.1"),
            [v4.clone(), refused.clone()],
            "{kind:?}: allowed_clients = 127.0.0.1"
        );
        assert_eq!(
            dual_stack_clients(kind, "127.0.0.1,::1"),
            [v4.clone(), v6.clone()],
            "{kind:?}: allowed_clients = 127.0.0.1,::1"
        );
        assert_eq!(
            dual_stack_clients(kind, "::1"),
            [refused.clone(), v6.clone()],
            "{kind:?}: allowed_clients = ::1"
        );
    }
}

/// The start-up log of a pool listening on a bare port whose `[::]` is
/// taken (dual stack, so IPv4 too), without times.
fn port_only_in_use(kind: Kind) -> Vec<String> {
    let port = free_port_on("[::]");
    let busy = std::net::TcpListener::bind(format!("[::]:{port}")).expect("occupy [::]");
    let conf = pool_conf(&format!("listen = {port}"));
    let log = match Server::try_start(kind, &conf, None, &[]) {
        Ok(_) => panic!("{kind:?} started although port {port} is taken"),
        Err(log) => log,
    };
    drop(busy);
    log.lines()
        .filter_map(|l| l.split_once("] ").map(|(_, m)| m.to_string()))
        .filter(|m| m.starts_with("NOTICE: Failed") || m.starts_with("ERROR: "))
        .map(|m| m.replace(&port.to_string(), "PORT"))
        .collect()
}

/// A port-only `listen` tries `::` first (IPv6 and mapped IPv4), says so
/// when it falls back to 0.0.0.0, and names the address as configured,
/// with php-fpm's `strerror (errno)`.
#[test]
fn port_only_listen_tries_ipv6_first_and_reports_like_php_fpm() {
    if !have_ipv6() {
        return skip("no IPv6 loopback");
    }
    let ours = port_only_in_use(Kind::Corral);
    assert_eq!(
        ours,
        [
            "NOTICE: Failed implicitly binding to ::, retrying with 0.0.0.0",
            "ERROR: unable to bind listening socket for address 'PORT': Address already in use (98)",
            "ERROR: FPM initialization failed",
        ]
    );
    if require_php_fpm().is_some() {
        assert_eq!(
            ours,
            port_only_in_use(Kind::PhpFpm),
            "corral (left), php-fpm (right)"
        );
    }
}

/// A pool whose user, group, listen.owner and listen.group are numbers
/// with no passwd or group entry: php-fpm takes them as ids, and so does
/// corral. The socket belongs to them and the workers run as them.
#[test]
fn numeric_ids_need_no_passwd_entry() {
    if !require_root() {
        return;
    }
    let (uid, gid) = (47_311u32, 47_312u32);
    assert!(
        ids_unused(uid, gid),
        "ids {uid}/{gid} are taken on this host"
    );
    let mut kinds = vec![Kind::Corral];
    if require_php_fpm().is_some() {
        kinds.push(Kind::PhpFpm);
    }
    for kind in kinds {
        let conf = pool_conf(&format!(
            "user = {uid}\ngroup = {gid}\nlisten.owner = {uid}\nlisten.group = {gid}\nlisten.mode = 0660"
        ));
        let s = Server::try_start(kind, &conf, None, &[])
            .unwrap_or_else(|log| panic!("{kind:?} refused numeric ids:\n{log}"));
        let Listen::Unix(path) = s.listen().clone() else {
            unreachable!()
        };
        let md = fs::metadata(&path).unwrap();
        assert_eq!((md.uid(), md.gid()), (uid, gid), "{kind:?}: socket owner");
        let r = s.get("info.php", "");
        assert_eq!(r.status, 200, "{kind:?}: {r:?}");
        let workers = s.worker_pids();
        assert!(!workers.is_empty(), "{kind:?}: no workers");
        for w in workers {
            assert_eq!(
                uid_of_pid(w),
                Some(uid),
                "{kind:?}: worker {w} runs as {uid}"
            );
        }
    }
}

/// Neither id has a passwd or group entry.
fn ids_unused(uid: u32, gid: u32) -> bool {
    let taken = |file: &str, id: u32| {
        fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(':').nth(2) == Some(id.to_string().as_str()))
    };
    !taken("/etc/passwd", uid) && !taken("/etc/group", gid)
}

/// The ERROR and ALERT lines (without times) and the exit code of a
/// master started in the foreground on a pool on `listen` that cannot
/// start. (The harness cannot be used: it parses `listen` to connect.)
fn refused_start(kind: Kind, listen: &str) -> (Vec<String>, Option<i32>) {
    let dir = temp_dir("port");
    let conf = dir.path().join("php-fpm.conf");
    let text = format!(
        "[global]\nerror_log = {d}/error.log\npid = {d}/fpm.pid\n[www]\nlisten = {listen}\nuser = nobody\npm = static\npm.max_children = 1\n",
        d = dir.path().display()
    );
    fs::write(&conf, text).unwrap();
    let conf = conf.display().to_string();
    let control = dir.path().join("control.sock").display().to_string();
    let out = match kind {
        Kind::Corral => run_cmd(
            &corral_bin(),
            &["-F", "-O", "-y", &conf, "--control-socket", &control],
        ),
        Kind::PhpFpm => run_cmd(std::path::Path::new(PHP_FPM), &["-F", "-O", "-y", &conf]),
    };
    let lines = out
        .stderr
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, m)| m.to_string()))
        .filter(|m| m.starts_with("ERROR: ") || m.starts_with("ALERT: "))
        .collect();
    (lines, out.code)
}

/// A port past 65535 (or 0) is refused when the socket is made, with
/// php-fpm's message, instead of binding some other port.
#[test]
fn invalid_port_is_refused_like_php_fpm() {
    if !require_root() {
        return;
    }
    for listen in ["127.0.0.1:69002", "127.0.0.1:0", "69002"] {
        let port = listen.rsplit(':').next().unwrap();
        let (ours, code) = refused_start(Kind::Corral, listen);
        assert_eq!(
            ours,
            [
                format!("ERROR: invalid port value '{port}'"),
                "ERROR: FPM initialization failed".to_string()
            ],
            "listen = {listen}"
        );
        assert_eq!(code, Some(78), "listen = {listen}");
        if require_php_fpm().is_some() {
            assert_eq!(
                (ours, code),
                refused_start(Kind::PhpFpm, listen),
                "listen = {listen}: corral (left), php-fpm (right)"
            );
        }
    }
}

/// What a pool with `apparmor_hat` says when it cannot change hat, from
/// "[pool www] failed" on, once it was logged (≤ 10 s). php-fpm's child
/// says it on its stderr (caught into the log), corral's prototype through
/// the master: the words are compared.
fn apparmor_failure(kind: Kind) -> String {
    let conf = pool_conf(
        "pm.max_children = 1
catch_workers_output = yes
apparmor_hat = corral-test-hat",
    );
    let s = Server::start(kind, &conf, None, &[]);
    let line = s
        .wait_log("[pool www] failed to ", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{kind:?}: no AppArmor failure logged:\n{}", s.log.text()));
    let at = line.find("[pool www] failed").unwrap();
    line[at..].trim_end_matches('"').to_string()
}

/// `apparmor_hat`: the pool changes to that hat of the master's AppArmor
/// profile, as php-fpm's children do; where that cannot be done (no
/// AppArmor in this kernel, or the master is unconfined) the pool does not
/// run unconfined, and the log says why in php-fpm's words.
#[test]
fn apparmor_hat_is_applied_or_the_pool_fails_like_php_fpm() {
    if !require_root() {
        return;
    }
    let ours = apparmor_failure(Kind::Corral);
    assert!(
        ours.starts_with("[pool www] failed to query apparmor confinement.")
            || ours.starts_with("[pool www] failed to change to new confinement"),
        "{ours}"
    );
    if require_php_fpm().is_some() {
        assert_eq!(
            ours,
            apparmor_failure(Kind::PhpFpm),
            "corral (left), php-fpm (right)"
        );
    }
}
