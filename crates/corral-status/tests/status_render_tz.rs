//! Local time in text and HTML: fixtures captured from php-fpm 8.2.36 with
//! `TZ=IST-5:30` (and `clear_env = no`). A separate test binary, because
//! the time zone is process-wide.

mod common;

use common::{check_fixture, set_tz};
use corral_status::render::Format;

fn ist() {
    // A POSIX TZ string, so no tzdata is needed.
    set_tz("IST-5:30");
}

#[test]
fn text_in_a_non_utc_zone() {
    ist();
    check_fixture("tz/text.txt", Format::Text, false);
}

#[test]
fn text_full_in_a_non_utc_zone() {
    ist();
    check_fixture("tz/text_full.txt", Format::Text, true);
}

#[test]
fn html_in_a_non_utc_zone() {
    ist();
    check_fixture("tz/html.txt", Format::Html, false);
}

#[test]
fn html_full_in_a_non_utc_zone() {
    ist();
    check_fixture("tz/html_full.txt", Format::Html, true);
    let body = common::response("tz/html_full.txt").body;
    assert!(body.contains(" +0530</td>"));
}
