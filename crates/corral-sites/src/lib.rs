//! corral-sites: one command provisions an isolated PHP site (accounts,
//! directories with POSIX ACLs, a pool file and a web server vhost from
//! templates with inheritance), verifies it through the web server, and
//! undoes every change if any step fails. See docs/sites.md.

#![forbid(unsafe_code)]

pub mod acl;
pub mod acl_xattr;
pub mod cli;
pub mod doctor;
pub mod error;
pub mod fpm;
pub mod fs_layout;
pub mod functions;
pub mod host_files;
pub mod journal;
pub mod keys;
pub mod lock;
pub mod paths;
pub mod pens;
pub mod plan;
pub mod preflight;
pub mod quota;
pub mod quota_step;
pub mod registry;
pub mod relock;
pub mod render_pool;
pub mod sessions;
pub mod sftp;
pub mod sizing;
pub mod spec;
pub mod template;
pub mod users;
pub mod verify;
pub mod vhost;
pub mod webserver;

pub use error::{Result, SitesError};
