/* Native probes for the hostile-tenant suite (crates/corral/tests/pens.rs).
 *
 * The attacker's PHP starts this program (proc_open) as its pool user, the
 * way a hostile tenant runs native code. One subcommand per probe; each
 * prints `key=value` lines on stdout, flushed as it goes, so that a probe
 * killed half-way (OOM) still shows how far it got. The first line is
 * always `native=ok`: the PHP side knows the launch worked.
 *
 * Built by the test: gcc -O1 -o pens-native pens_native.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void out(const char *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(const char *k, const char *fmt, ...) {
    va_list ap;
    printf("%s=", k);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static const char *err(int e) { return e ? strerror(e) : "ok"; }

/* The /proc/self/status line starting with `key`, value only. */
static void status_line(const char *key, char *buf, size_t n) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[512];
    buf[0] = 0;
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
            char *v = line + strlen(key);
            while (*v == ':' || *v == ' ' || *v == '\t') v++;
            v[strcspn(v, "\n")] = 0;
            snprintf(buf, n, "%s", v);
        }
    }
    fclose(f);
}

/* /proc/self/cgroup on one line, `;` between entries. */
static void cgroups(char *buf, size_t n) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[512];
    size_t used = 0;
    buf[0] = 0;
    if (!f) return;
    while (fgets(line, sizeof line, f) && used < n - 1) {
        line[strcspn(line, "\n")] = 0;
        used += snprintf(buf + used, n - used, "%s%s", used ? ";" : "", line);
    }
    fclose(f);
}

static int hello(void) {
    char nnp[64], seccomp[64], cg[2048];
    status_line("NoNewPrivs", nnp, sizeof nnp);
    status_line("Seccomp", seccomp, sizeof seccomp);
    cgroups(cg, sizeof cg);
    out("uid", "%d", (int)getuid());
    out("euid", "%d", (int)geteuid());
    out("nonewprivs", "%s", nnp);
    out("seccomp", "%s", seccomp);
    out("cgroup", "%s", cg);
    return 0;
}

/* Touches MB MiB in 16 MiB steps; prints how far it got after each. */
static int memhog(long mb) {
    char cg[2048];
    cgroups(cg, sizeof cg);
    out("cgroup", "%s", cg);
    out("pid", "%d", (int)getpid());
    long done = 0;
    const long step = 16;
    while (done < mb) {
        char *p = mmap(NULL, step << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            out("mmap_error", "%s", err(errno));
            break;
        }
        memset(p, 0x5a, step << 20);
        done += step;
        out("touched_mb", "%ld", done);
    }
    out("done_mb", "%ld", done);
    return 0;
}

/* Forks up to MAX children that block on a pipe (or, with `burn`, spin
 * on the CPU); stops at the first failure; holds them HOLD_MS, then closes
 * the pipe so they all exit. */
static int forkbomb(long max, long hold_ms, int burn) {
    int pfd[2];
    if (pipe(pfd) != 0) {
        out("error", "pipe: %s", err(errno));
        return 1;
    }
    char cg[2048];
    cgroups(cg, sizeof cg);
    out("cgroup", "%s", cg);
    long n = 0;
    int fail = 0;
    pid_t parent = getpid();
    for (; n < max; n++) {
        pid_t c = fork();
        if (c < 0) {
            fail = errno;
            break;
        }
        if (c == 0) {
            char b;
            close(pfd[1]);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(0);
            alarm((unsigned)(hold_ms / 1000 + 10));
            if (burn) {
                /* Spin until the parent closes the pipe. */
                fcntl(pfd[0], F_SETFL, O_NONBLOCK);
                volatile unsigned long x = 0;
                for (;;) {
                    for (int i = 0; i < 1000000; i++) x += (unsigned long)i;
                    ssize_t r = read(pfd[0], &b, 1);
                    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) _exit(0);
                }
            }
            while (read(pfd[0], &b, 1) < 0 && errno == EINTR) {
            }
            _exit(0);
        }
    }
    out("forked", "%ld", n);
    out("fork_error", "%s", err(fail));
    struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    close(pfd[1]);
    while (wait(NULL) > 0 || errno == EINTR) {
    }
    out("reaped", "all");
    return 0;
}

/* ptrace, process_vm_readv and kill(0) on another tenant's pid. */
static int trace(pid_t pid) {
    errno = 0;
    long r = ptrace(PTRACE_ATTACH, pid, 0, 0);
    int e = r == 0 ? 0 : errno;
    out("ptrace_attach", "%s", err(e));
    if (r == 0) {
        waitpid(pid, NULL, __WALL);
        ptrace(PTRACE_DETACH, pid, 0, 0);
    }
    errno = 0;
    r = ptrace(PTRACE_SEIZE, pid, 0, 0);
    e = r == 0 ? 0 : errno;
    out("ptrace_seize", "%s", err(e));
    if (r == 0) ptrace(PTRACE_DETACH, pid, 0, 0);
    /* Any address: EPERM/ESRCH mean refused; EFAULT would mean the
     * permission check passed and only the address was wrong. */
    char buf[16];
    struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
    errno = 0;
    ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    out("vm_readv", "%s", got >= 0 ? "ok" : err(errno));
    errno = 0;
    out("kill0", "%s", kill(pid, 0) == 0 ? "ok" : err(errno));
    errno = 0;
    out("sigcont", "%s", kill(pid, SIGCONT) == 0 ? "ok" : err(errno));
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/mem", (int)pid);
    int fd = open(p, O_RDONLY);
    out("proc_mem", "%s", fd >= 0 ? "ok" : err(errno));
    if (fd >= 0) close(fd);
    return 0;
}

/* SysV objects made by this pool (0666), and a 0666 segment made outside
 * the pool (its key given) attached and read. */
static int sysv(const char *tok, long host_key) {
    key_t key = (key_t)(0x50000000 | (strtoul(tok, NULL, 16) & 0xffffff));
    int shm = shmget(key, 1 << 20, IPC_CREAT | 0666);
    out("shm_key", "%d", (int)key);
    out("shmget", "%s", shm >= 0 ? "ok" : err(errno));
    if (shm >= 0) {
        char *m = shmat(shm, NULL, 0);
        if (m != (void *)-1) {
            snprintf(m, 64, "pens-%s", tok);
            shmdt(m);
        }
    }
    int sem = semget(key, 1, IPC_CREAT | 0666);
    out("semget", "%s", sem >= 0 ? "ok" : err(errno));
    int msg = msgget(key, IPC_CREAT | 0666);
    out("msgget", "%s", msg >= 0 ? "ok" : err(errno));
    if (host_key) {
        int h = shmget((key_t)host_key, 0, 0);
        out("host_shmget", "%s", h >= 0 ? "ok" : err(errno));
        if (h >= 0) {
            char *m = shmat(h, NULL, SHM_RDONLY);
            if (m == (void *)-1) {
                out("host_shmat", "%s", err(errno));
            } else {
                char copy[65];
                memcpy(copy, m, 64);
                copy[64] = 0;
                copy[strcspn(copy, "\n")] = 0;
                out("host_shmat", "ok");
                out("host_content", "%s", copy);
                shmdt(m);
            }
        }
    }
    return 0;
}

/* POSIX shared memory and a named semaphore (both live in /dev/shm). */
static int posixshm(const char *tok) {
    char name[128];
    snprintf(name, sizeof name, "/pens-%s-shm", tok);
    int fd = shm_open(name, O_CREAT | O_RDWR, 0666);
    out("shm_open", "%s", fd >= 0 ? "ok" : err(errno));
    if (fd >= 0) {
        if (ftruncate(fd, 4096) == 0) {
            char v[64];
            int n = snprintf(v, sizeof v, "pens-%s", tok);
            if (write(fd, v, (size_t)n) < 0) out("shm_write", "%s", err(errno));
        }
        close(fd);
    }
    snprintf(name, sizeof name, "/pens-%s-sem", tok);
    sem_t *s = sem_open(name, O_CREAT, 0666, 1);
    out("sem_open", "%s", s != SEM_FAILED ? "ok" : err(errno));
    if (s != SEM_FAILED) sem_close(s);
    return 0;
}

/* Connects to the abstract unix socket NAME and reads what it says. */
static int abstract(const char *name) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t n = strlen(name);
    if (n > sizeof a.sun_path - 2) n = sizeof a.sun_path - 2;
    memcpy(a.sun_path + 1, name, n);
    int r = connect(s, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n));
    out("connect", "%s", r == 0 ? "ok" : err(errno));
    if (r == 0) {
        char buf[128];
        struct timeval tv = {2, 0};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t got = read(s, buf, sizeof buf - 1);
        buf[got > 0 ? got : 0] = 0;
        buf[strcspn(buf, "\n")] = 0;
        out("said", "%s", buf);
    }
    return 0;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0) return errno;
    ssize_t w = write(fd, text, strlen(text));
    int e = w < 0 ? errno : 0;
    close(fd);
    return e;
}

/* Tries to leave its cgroups or lift their limits. */
static int cgroup_escape(void) {
    char cg[2048], after[2048], path[1024], pid[32];
    cgroups(cg, sizeof cg);
    out("cgroup", "%s", cg);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[512];
    int escaped = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':');
        if (!c1) continue;
        char *c2 = strchr(c1 + 1, ':');
        if (!c2) continue;
        *c2 = 0;
        const char *ctrl = c1 + 1, *rel = c2 + 1;
        char dir[256];
        if (*ctrl == 0) snprintf(dir, sizeof dir, "/sys/fs/cgroup/unified");
        else if (strncmp(ctrl, "name=", 5) == 0) snprintf(dir, sizeof dir, "/sys/fs/cgroup/%s", ctrl + 5);
        else snprintf(dir, sizeof dir, "/sys/fs/cgroup/%s", ctrl);
        if (strcmp(ctrl, "memory") && strcmp(ctrl, "pids") && strcmp(ctrl, "cpu") && *ctrl) continue;
        /* The hierarchy's root, and the pool cgroup's parent. */
        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        int e = write_file(path, pid);
        out("move_to_root", "%s %s", ctrl[0] ? ctrl : "v2", err(e));
        if (!e) escaped = 1;
        if (strcmp(rel, "/") != 0) {
            char parent[768];
            snprintf(parent, sizeof parent, "%s%s", dir, rel);
            char *slash = strrchr(parent, '/');
            if (slash && slash > parent + strlen(dir)) {
                *slash = 0;
                snprintf(path, sizeof path, "%s/cgroup.procs", parent);
                e = write_file(path, pid);
                out("move_to_parent", "%s %s", ctrl[0] ? ctrl : "v2", err(e));
                if (!e) escaped = 1;
            }
            const char *knob = NULL, *val = NULL;
            if (!strcmp(ctrl, "memory")) knob = "memory.limit_in_bytes", val = "-1";
            else if (!strcmp(ctrl, "pids")) knob = "pids.max", val = "max";
            else if (!strcmp(ctrl, "cpu")) knob = "cpu.cfs_quota_us", val = "-1";
            else if (!*ctrl) knob = "memory.max", val = "max";
            if (knob) {
                snprintf(path, sizeof path, "%s%s/%s", dir, rel, knob);
                e = write_file(path, val);
                out("lift_limit", "%s %s", knob, err(e));
                if (!e) escaped = 1;
            }
        }
    }
    if (f) fclose(f);
    cgroups(after, sizeof after);
    out("cgroup_after", "%s", after);
    out("escaped", "%s", escaped || strcmp(cg, after) ? "yes" : "no");
    return 0;
}

/* Dumps core from a child whose cwd is DIR; reports whether the kernel
 * says it wrote one. */
static int core(const char *dir) {
    pid_t c = fork();
    if (c == 0) {
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        if (chdir(dir) != 0) _exit(3);
        setrlimit(RLIMIT_CORE, &rl);
        prctl(PR_SET_DUMPABLE, 1);
        abort();
    }
    int st = 0;
    waitpid(c, &st, 0);
    out("child", "%d", (int)c);
    out("signaled", "%d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    out("core_dumped", "%s", WIFSIGNALED(st) && WCOREDUMP(st) ? "yes" : "no");
    return 0;
}

/* no_new_privs, then a setuid-root program (it prints its euid). */
static int nnp(const char *setuid_prog) {
    char v[64];
    status_line("NoNewPrivs", v, sizeof v);
    out("nonewprivs", "%s", v);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        execl(setuid_prog, setuid_prog, (char *)NULL);
        printf("exec_error=%s\n", strerror(errno));
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    return 0;
}

/* A new user + mount namespace: tries to unmount what hides the host's
 * /tmp, /var/tmp, /dev/shm and /proc, then looks for PATHs. */
static int userns(int argc, char **argv) {
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
        out("unshare", "%s", err(errno));
        return 0;
    }
    out("unshare", "ok");
    char m[64];
    int fd = open("/proc/self/setgroups", O_WRONLY);
    if (fd >= 0) {
        if (write(fd, "deny", 4) < 0) {
        }
        close(fd);
    }
    snprintf(m, sizeof m, "0 %d 1", (int)uid);
    out("uid_map", "%s", err(write_file("/proc/self/uid_map", m)));
    snprintf(m, sizeof m, "0 %d 1", (int)gid);
    out("gid_map", "%s", err(write_file("/proc/self/gid_map", m)));
    const char *mounts[] = {"/tmp", "/var/tmp", "/dev/shm", "/proc"};
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 3; k++) { /* stacked mounts: peel a few */
            int r = umount2(mounts[i], MNT_DETACH);
            if (k == 0) out("umount", "%s %s", mounts[i], r == 0 ? "ok" : err(errno));
            if (r != 0) break;
        }
    }
    for (int i = 0; i < argc; i++) {
        struct stat st;
        out("sees", "%s %s", argv[i], stat(argv[i], &st) == 0 ? "yes" : "no");
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("native=ok\n");
    fflush(stdout);
    if (argc < 2) return hello();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "hello")) return hello();
    if (!strcmp(cmd, "memhog") && argc > 2) return memhog(atol(argv[2]));
    if (!strcmp(cmd, "forkbomb") && argc > 3)
        return forkbomb(atol(argv[2]), atol(argv[3]), argc > 4 && !strcmp(argv[4], "burn"));
    if (!strcmp(cmd, "trace") && argc > 2) return trace((pid_t)atoi(argv[2]));
    if (!strcmp(cmd, "sysv") && argc > 3) return sysv(argv[2], atol(argv[3]));
    if (!strcmp(cmd, "posixshm") && argc > 2) return posixshm(argv[2]);
    if (!strcmp(cmd, "abstract") && argc > 2) return abstract(argv[2]);
    if (!strcmp(cmd, "cgroup")) return cgroup_escape();
    if (!strcmp(cmd, "core") && argc > 2) return core(argv[2]);
    if (!strcmp(cmd, "nnp") && argc > 2) return nnp(argv[2]);
    if (!strcmp(cmd, "userns")) return userns(argc - 2, argv + 2);
    out("error", "unknown command %s", cmd);
    return 2;
}
