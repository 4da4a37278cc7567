//! A pool's own mount and IPC namespaces, entered by its prototype while it
//! is still root and before PHP starts (so OPcache's lock file, and
//! anything PHP's start-up writes to /tmp, is already private).
//!
//! What the pool then sees:
//! - `/tmp`, `/var/tmp`, `/dev/shm`: fresh tmpfs, `nosuid,nodev,noexec`,
//!   mode 1777, `corral.tmp_size` each. Nothing another pool or the host
//!   wrote there is visible, nothing this pool writes is visible outside.
//!   `noexec` because Landlock's Execute right only covers execve(2): a
//!   library the tenant wrote could still be mapped executable (dlopen,
//!   `LD_PRELOAD`, `ld.so ./binary`); the mount flag refuses that too. The
//!   tmpfs lives as long as the prototype: a reload or a restarted
//!   prototype starts with an empty `/tmp` (sessions kept in /tmp would
//!   be lost; Debian keeps them in /var/lib/php/sessions).
//! - `corral.landlock_write` trees: bound onto themselves `noexec,nosuid,
//!   nodev` (keeping their other mount flags, read-only included), for
//!   the same reason: Landlock already refuses to execve what the tenant
//!   writes there, the mount flag also refuses `ld.so ./copied-binary`
//!   and dlopen() of a library it wrote. The bind covers the tree's own
//!   mount; a filesystem mounted further down keeps its flags.
//! - `/proc`: a new procfs with `hidepid=invisible`, in which a process
//!   sees only the processes of its own uid. Every process of a pool runs
//!   as the pool's user, so the master, other pools and root's processes
//!   disappear from `ls /proc`. `hidepid=invisible` and per-mount procfs
//!   options exist since Linux 5.8; before that `hidepid=2` is used, and
//!   there the option is shared with every procfs of the PID namespace,
//!   i.e. the host's /proc gets it too (the usual hardening, but visible
//!   to the host: the report says so).
//! - SysV IPC (shmget, semget, msgget; PHP's shmop, sysvshm, sysvsem,
//!   sysvmsg) and POSIX message queues: a private IPC namespace. A segment
//!   dies with the namespace, i.e. with the pool's last process.
//!
//! **Why not a PID namespace.** The master supervises workers by their pid
//! as it sees them: the prototype reports them, the master checks through
//! its /proc that the prototype is their parent (`parent_of`), signals
//! them for `request_terminate_timeout`, reads their memory for the slow
//! log (`process_vm_readv`), and matches scoreboard slots by pid. In a
//! PID namespace the prototype (and the workers writing their slot) would
//! know only namespace pids, so every report would need translating (via
//! `NSpid` in /proc/PID/status, racing with pid reuse), and the prototype
//! would be the namespace's init, reaping every orphan and dying as the
//! last thing of the pool. `hidepid` hides the same processes, with no
//! second pid to translate: the master's view stays the kernel's.
//!
//! **chroot.** PHP starts before the chroot, so the private tmpfs and
//! procfs are mounted at the host's paths (where start-up writes) and also
//! inside the chroot (where the tenant lives afterwards): on
//! `CHROOT/tmp`, `CHROOT/var/tmp`, `CHROOT/dev/shm` when those directories
//! exist, and on `CHROOT/proc` only when a procfs is already mounted
//! there (`CHROOT/proc/self` exists): a chroot without /proc keeps having
//! none. What is missing is reported, never created inside the tenant's
//! tree.
//!
//! **Failures.** Each step that fails is reported as lacking and the rest
//! go on, except where going on would be unsafe: if the new mount
//! namespace cannot be entered, or `/` cannot be made recursively private,
//! no mount is made at all, because it would land in (or propagate to)
//! the host's mount namespace and put a tmpfs over everybody's /tmp.

use std::path::{Path, PathBuf};

use crate::{Confinement, Report};

/// Used when a pool asks for namespaces without `corral.tmp_size` (and in
/// place of 0, which would mean an unbounded tmpfs).
pub const DEFAULT_TMP_SIZE: u64 = 64 * 1024 * 1024;

/// One thing to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// unshare(CLONE_NEWIPC).
    Ipc,
    /// unshare(CLONE_NEWNS); every mount after it depends on it.
    MountNamespace,
    /// `/` and everything under it MS_PRIVATE, recursively; every mount
    /// after it depends on it.
    PrivateRoot,
    Tmpfs {
        target: PathBuf,
        size: u64,
    },
    Proc {
        target: PathBuf,
    },
    /// A write tree bound onto itself noexec,nosuid,nodev.
    NoExec {
        target: PathBuf,
    },
}

impl Step {
    /// A step whose failure must stop every mount after it.
    fn guards_mounts(&self) -> bool {
        matches!(self, Step::MountNamespace | Step::PrivateRoot)
    }

    fn is_mount(&self) -> bool {
        matches!(
            self,
            Step::Tmpfs { .. } | Step::Proc { .. } | Step::NoExec { .. }
        )
    }

    fn describe(&self) -> String {
        match self {
            Step::Ipc => "private IPC namespace (SysV, POSIX queues)".into(),
            Step::MountNamespace => "private mount namespace".into(),
            Step::PrivateRoot => "/ made recursively private".into(),
            Step::Tmpfs { target, size } => {
                format!("{}: private tmpfs ({})", target.display(), size_text(*size))
            }
            Step::Proc { target } => format!("{}: own processes only", target.display()),
            Step::NoExec { target } => format!("{}: noexec,nosuid,nodev", target.display()),
        }
    }
}

fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes.checked_rem(MIB) == Some(0) {
        format!("{}M", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// What the plan needs to know about the filesystem: asked, not assumed,
/// so the plan stays a pure function of its answers.
pub trait Probe {
    fn is_dir(&self, path: &Path) -> bool;
}

/// The real filesystem.
pub struct Filesystem;

impl Probe for Filesystem {
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}

/// The steps, and what the plan already knows it cannot do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountPlan {
    pub steps: Vec<Step>,
    pub lacking: Vec<String>,
}

/// The directories that get a private tmpfs.
const TMP_DIRS: [&str; 3] = ["tmp", "var/tmp", "dev/shm"];

/// The plan for a pool: nothing unless it asked for namespaces.
pub fn plan(c: &Confinement, chroot: Option<&Path>, probe: &dyn Probe) -> MountPlan {
    let mut plan = MountPlan::default();
    if !c.namespaces {
        return plan;
    }
    let size = if c.tmp_size == 0 {
        DEFAULT_TMP_SIZE
    } else {
        c.tmp_size
    };
    plan.steps
        .extend([Step::Ipc, Step::MountNamespace, Step::PrivateRoot]);
    let root = Path::new("/");
    for dir in TMP_DIRS {
        plan.steps.push(Step::Tmpfs {
            target: root.join(dir),
            size,
        });
    }
    plan.steps.push(Step::Proc {
        target: root.join("proc"),
    });
    if let Some(ch) = chroot.filter(|ch| *ch != root) {
        for dir in TMP_DIRS {
            let target = ch.join(dir);
            if probe.is_dir(&target) {
                plan.steps.push(Step::Tmpfs { target, size });
            } else {
                plan.lacking.push(format!(
                    "{}: no such directory in the chroot, not made private",
                    target.display()
                ));
            }
        }
        let proc = ch.join("proc");
        if probe.is_dir(&proc.join("self")) {
            plan.steps.push(Step::Proc { target: proc });
        }
    }
    // Write trees are the tenant's paths: inside the chroot, if any.
    let base = chroot.unwrap_or(root);
    for w in &c.write {
        let Ok(rel) = w.strip_prefix("/") else {
            continue;
        };
        let target = base.join(rel);
        if probe.is_dir(&target) {
            plan.steps.push(Step::NoExec { target });
        } else {
            plan.lacking.push(format!(
                "{}: not a directory, not made noexec",
                target.display()
            ));
        }
    }
    plan
}

/// The kernel calls the steps need, behind a trait so the order and the
/// stop-on-unsafe rule are tested without root.
pub trait NamespaceOps {
    fn unshare_ipc(&mut self) -> std::io::Result<()>;
    fn unshare_mount(&mut self) -> std::io::Result<()>;
    fn make_root_private(&mut self) -> std::io::Result<()>;
    fn mount_tmpfs(&mut self, target: &Path, size: u64) -> std::io::Result<()>;
    /// Returns the hidepid option that took.
    fn mount_proc(&mut self, target: &Path) -> std::io::Result<&'static str>;
    fn bind_noexec(&mut self, target: &Path) -> std::io::Result<()>;
}

/// Run the plan; every step ends up in the report, applied or lacking.
pub fn apply(plan: &MountPlan, ops: &mut dyn NamespaceOps) -> Report {
    let mut report = Report::default();
    for l in &plan.lacking {
        report.lacking(l.clone());
    }
    let mut mounts_unsafe: Option<String> = None;
    for step in &plan.steps {
        if step.is_mount() {
            if let Some(why) = &mounts_unsafe {
                report.lacking(format!("{}: not mounted ({why})", step.describe()));
                continue;
            }
        }
        let done = match step {
            Step::Ipc => ops.unshare_ipc().map(|()| step.describe()),
            Step::MountNamespace => ops.unshare_mount().map(|()| step.describe()),
            Step::PrivateRoot => ops.make_root_private().map(|()| step.describe()),
            Step::Tmpfs { target, size } => {
                ops.mount_tmpfs(target, *size).map(|()| step.describe())
            }
            Step::Proc { target } => ops.mount_proc(target).map(|opt| {
                let shared = if opt == "hidepid=2" {
                    "; kernel before 5.8: the host's /proc has it too"
                } else {
                    ""
                };
                format!("{} ({opt}{shared})", step.describe())
            }),
            Step::NoExec { target } => ops.bind_noexec(target).map(|()| step.describe()),
        };
        match done {
            Ok(text) => report.applied(text),
            Err(e) => {
                report.lacking(format!("{}: {e}", step.describe()));
                if step.guards_mounts() {
                    mounts_unsafe = Some(format!(
                        "{} failed, a mount would reach the host",
                        step.describe()
                    ));
                }
            }
        }
    }
    report
}

/// The real calls.
pub struct Kernel;

fn io(e: corral_sys::nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

impl NamespaceOps for Kernel {
    fn unshare_ipc(&mut self) -> std::io::Result<()> {
        corral_sys::nix::sched::unshare(corral_sys::nix::sched::CloneFlags::CLONE_NEWIPC)
            .map_err(io)
    }

    fn unshare_mount(&mut self) -> std::io::Result<()> {
        corral_sys::nix::sched::unshare(corral_sys::nix::sched::CloneFlags::CLONE_NEWNS).map_err(io)
    }

    fn make_root_private(&mut self) -> std::io::Result<()> {
        use corral_sys::nix::mount::{mount, MsFlags};
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(io)
    }

    fn mount_tmpfs(&mut self, target: &Path, size: u64) -> std::io::Result<()> {
        use corral_sys::nix::mount::{mount, MsFlags};
        let data = format!("size={size},mode=1777");
        mount(
            Some("tmpfs"),
            target,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(data.as_str()),
        )
        .map_err(io)
    }

    fn mount_proc(&mut self, target: &Path) -> std::io::Result<&'static str> {
        use corral_sys::nix::mount::{mount, MsFlags};
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let mut last = None;
        for opt in ["hidepid=invisible", "hidepid=2"] {
            match mount(Some("proc"), target, Some("proc"), flags, Some(opt)) {
                Ok(()) => return Ok(opt),
                // Older kernels know only the numeric form.
                Err(e @ corral_sys::nix::errno::Errno::EINVAL) => last = Some(e),
                Err(e) => return Err(io(e)),
            }
        }
        Err(io(last.unwrap_or(corral_sys::nix::errno::Errno::EINVAL)))
    }

    fn bind_noexec(&mut self, target: &Path) -> std::io::Result<()> {
        use corral_sys::nix::mount::{mount, MsFlags};
        let kept = kept_flags(target)?;
        mount(
            Some(target),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(io)?;
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_NOEXEC
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | kept;
        mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(io)
    }
}

/// A bind remount sets every per-mount flag at once: those of the mount
/// underneath must be carried over, or a read-only tree would become
/// writable.
fn kept_flags(target: &Path) -> std::io::Result<corral_sys::nix::mount::MsFlags> {
    use corral_sys::nix::mount::MsFlags;
    use corral_sys::nix::sys::statvfs::{statvfs, FsFlags};
    let have = statvfs(target).map_err(io)?.flags();
    let mut kept = MsFlags::empty();
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_SYNCHRONOUS, MsFlags::MS_SYNCHRONOUS),
    ] {
        if have.contains(st) {
            kept |= ms;
        }
    }
    Ok(kept)
}

/// Plan and apply for one prototype: the whole of this layer.
pub fn enter(c: &Confinement, chroot: Option<&Path>) -> Report {
    let plan = plan(c, chroot, &Filesystem);
    apply(&plan, &mut Kernel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    struct Dirs(HashSet<PathBuf>);

    impl Probe for Dirs {
        fn is_dir(&self, path: &Path) -> bool {
            self.0.contains(path)
        }
    }

    fn dirs(list: &[&str]) -> Dirs {
        Dirs(list.iter().map(PathBuf::from).collect())
    }

    fn on(tmp_size: u64) -> Confinement {
        Confinement {
            namespaces: true,
            tmp_size,
            ..Default::default()
        }
    }

    fn tmpfs(t: &str, size: u64) -> Step {
        Step::Tmpfs {
            target: t.into(),
            size,
        }
    }

    #[test]
    fn nothing_unless_asked() {
        let p = plan(
            &Confinement::default(),
            Some(Path::new("/jail")),
            &dirs(&[]),
        );
        assert_eq!(p, MountPlan::default());
    }

    #[test]
    fn namespaces_first_then_private_root_then_mounts() {
        let p = plan(&on(1 << 20), None, &dirs(&[]));
        assert_eq!(
            p.steps,
            vec![
                Step::Ipc,
                Step::MountNamespace,
                Step::PrivateRoot,
                tmpfs("/tmp", 1 << 20),
                tmpfs("/var/tmp", 1 << 20),
                tmpfs("/dev/shm", 1 << 20),
                Step::Proc {
                    target: "/proc".into()
                },
            ]
        );
        assert!(p.lacking.is_empty());
    }

    #[test]
    fn zero_size_never_means_unbounded() {
        let p = plan(&on(0), None, &dirs(&[]));
        assert!(p.steps.contains(&tmpfs("/tmp", DEFAULT_TMP_SIZE)));
    }

    #[test]
    fn chroot_gets_what_it_has_and_reports_the_rest() {
        let p = plan(
            &on(4096),
            Some(Path::new("/jail")),
            &dirs(&["/jail/tmp", "/jail/dev/shm", "/jail/proc/self"]),
        );
        let tail: Vec<_> = p.steps[7..].to_vec();
        assert_eq!(
            tail,
            vec![
                tmpfs("/jail/tmp", 4096),
                tmpfs("/jail/dev/shm", 4096),
                Step::Proc {
                    target: "/jail/proc".into()
                },
            ]
        );
        assert_eq!(p.lacking.len(), 1);
        assert!(p.lacking[0].contains("/jail/var/tmp"), "{:?}", p.lacking);
    }

    #[test]
    fn chroot_without_proc_gets_none() {
        let p = plan(&on(4096), Some(Path::new("/jail")), &dirs(&["/jail/proc"]));
        assert!(!p.steps.contains(&Step::Proc {
            target: "/jail/proc".into()
        }));
    }

    /// Records the calls; fails the ones named.
    #[derive(Default)]
    struct Fake {
        calls: Vec<String>,
        fail: Vec<&'static str>,
        old_kernel: bool,
    }

    impl Fake {
        fn call(&mut self, what: String, kind: &'static str) -> std::io::Result<()> {
            self.calls.push(what);
            if self.fail.contains(&kind) {
                Err(std::io::Error::from_raw_os_error(libc_eperm()))
            } else {
                Ok(())
            }
        }
    }

    fn libc_eperm() -> i32 {
        corral_sys::nix::errno::Errno::EPERM as i32
    }

    impl NamespaceOps for Fake {
        fn unshare_ipc(&mut self) -> std::io::Result<()> {
            self.call("ipc".into(), "ipc")
        }
        fn unshare_mount(&mut self) -> std::io::Result<()> {
            self.call("mnt".into(), "mnt")
        }
        fn make_root_private(&mut self) -> std::io::Result<()> {
            self.call("private".into(), "private")
        }
        fn mount_tmpfs(&mut self, target: &Path, _size: u64) -> std::io::Result<()> {
            self.call(format!("tmpfs {}", target.display()), "tmpfs")
        }
        fn mount_proc(&mut self, target: &Path) -> std::io::Result<&'static str> {
            self.call(format!("proc {}", target.display()), "proc")?;
            Ok(if self.old_kernel {
                "hidepid=2"
            } else {
                "hidepid=invisible"
            })
        }
        fn bind_noexec(&mut self, target: &Path) -> std::io::Result<()> {
            self.call(format!("noexec {}", target.display()), "noexec")
        }
    }

    #[test]
    fn applies_every_step_in_order() {
        let mut fake = Fake::default();
        let r = apply(&plan(&on(1 << 20), None, &dirs(&[])), &mut fake);
        assert_eq!(
            fake.calls,
            [
                "ipc",
                "mnt",
                "private",
                "tmpfs /tmp",
                "tmpfs /var/tmp",
                "tmpfs /dev/shm",
                "proc /proc"
            ]
        );
        assert!(r.lacking.is_empty(), "{:?}", r.lacking);
        assert_eq!(r.applied.len(), 7);
        assert!(r.applied.contains(&"/tmp: private tmpfs (1M)".to_string()));
        assert!(r
            .applied
            .contains(&"/proc: own processes only (hidepid=invisible)".to_string()));
    }

    /// A mount after a failed unshare or a failed MS_PRIVATE would cover
    /// the host's /tmp: none is attempted.
    #[test]
    fn no_mount_reaches_the_host() {
        for guard in ["mnt", "private"] {
            let mut fake = Fake {
                fail: vec![guard],
                ..Default::default()
            };
            let r = apply(&plan(&on(1 << 20), None, &dirs(&[])), &mut fake);
            assert!(
                !fake
                    .calls
                    .iter()
                    .any(|c| c.starts_with("tmpfs") || c.starts_with("proc")),
                "{guard}: {:?}",
                fake.calls
            );
            // The guard itself and the four mounts it stopped.
            assert_eq!(r.lacking.len(), 5, "{guard}: {:?}", r.lacking);
            assert!(r.lacking.iter().any(|l| l.contains("would reach the host")));
        }
    }

    #[test]
    fn other_failures_are_reported_and_the_rest_goes_on() {
        let mut fake = Fake {
            fail: vec!["ipc", "tmpfs"],
            ..Default::default()
        };
        let r = apply(&plan(&on(1 << 20), None, &dirs(&[])), &mut fake);
        assert_eq!(fake.calls.len(), 7);
        assert_eq!(r.lacking.len(), 4, "{:?}", r.lacking);
        assert!(r.lacking[0].starts_with("private IPC namespace"));
        assert_eq!(r.applied.len(), 3);
    }

    #[test]
    fn an_old_kernel_is_said_to_share_hidepid_with_the_host() {
        let mut fake = Fake {
            old_kernel: true,
            ..Default::default()
        };
        let r = apply(&plan(&on(1 << 20), None, &dirs(&[])), &mut fake);
        assert!(r
            .applied
            .iter()
            .any(|a| a.contains("hidepid=2; kernel before 5.8")));
    }

    #[test]
    fn write_trees_are_made_noexec_inside_the_chroot_if_any() {
        let c = Confinement {
            write: vec!["/srv/a/data".into(), "/srv/a/gone".into()],
            ..on(4096)
        };
        let p = plan(&c, None, &dirs(&["/srv/a/data"]));
        assert_eq!(
            p.steps.last(),
            Some(&Step::NoExec {
                target: "/srv/a/data".into()
            })
        );
        assert_eq!(p.lacking.len(), 1, "{:?}", p.lacking);
        let p = plan(&c, Some(Path::new("/jail")), &dirs(&["/jail/srv/a/data"]));
        assert!(p.steps.contains(&Step::NoExec {
            target: "/jail/srv/a/data".into()
        }));
        let mut fake = Fake {
            fail: vec!["private"],
            ..Default::default()
        };
        apply(&p, &mut fake);
        assert!(!fake.calls.iter().any(|c| c.starts_with("noexec")));
    }

    #[test]
    fn plan_lacking_reaches_the_report() {
        let p = plan(&on(1), Some(Path::new("/jail")), &dirs(&[]));
        let r = apply(&p, &mut Fake::default());
        assert_eq!(r.lacking.len(), 3);
    }
}
