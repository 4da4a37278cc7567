//! What each layer costs a prototype at start-up, measured on this
//! kernel: `cargo run --release -p corral-isolation --example layer_cost`
//! (as root, for the namespaces). Every layer is irreversible, so each
//! sample runs in a fresh child (this program re-run with one argument).

use std::process::Command;
use std::time::Instant;

use corral_isolation::landlock::{restrict, rules, PhpNeeds};
use corral_isolation::{namespaces, Confinement};

const LAYERS: [&str; 4] = ["namespaces", "no_new_privs", "landlock", "landlock+tcp"];
const SAMPLES: usize = 20;

fn main() {
    if let Some(layer) = std::env::args().nth(1) {
        println!("{}", measure(&layer));
        return;
    }
    for layer in LAYERS {
        let mut us: Vec<u128> = (0..SAMPLES)
            .map(|_| {
                let out = Command::new(std::env::current_exe().unwrap())
                    .arg(layer)
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0)
            })
            .collect();
        us.sort_unstable();
        println!(
            "{layer:14} median {:8.2} ms  min {:8.2} ms  ({SAMPLES} samples)",
            us[SAMPLES / 2] as f64 / 1000.0,
            us[0] as f64 / 1000.0
        );
    }
}

/// Microseconds for one layer, applied the way the prototype does.
fn measure(layer: &str) -> u128 {
    let c = Confinement {
        namespaces: true,
        tmp_size: namespaces::DEFAULT_TMP_SIZE,
        landlock: true,
        read: vec!["/srv".into()],
        write: vec!["/var/lib/php/sessions".into()],
        deny_connect_ports: if layer == "landlock+tcp" {
            vec![9000, 9001]
        } else {
            Vec::new()
        },
    };
    let needs = PhpNeeds {
        write: vec!["/tmp".into()],
        exec: true,
        ..Default::default()
    };
    let t = Instant::now();
    match layer {
        "namespaces" => {
            let r = namespaces::enter(&c, None);
            assert!(r.lacking.is_empty(), "{:?}", r.lacking);
        }
        "no_new_privs" => {
            let mut r = corral_isolation::Report::default();
            corral_isolation::privs::no_new_privs(&mut r);
        }
        _ => {
            restrict(&rules(&c, &needs)).unwrap();
        }
    }
    t.elapsed().as_micros()
}
