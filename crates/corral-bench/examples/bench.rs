//! `corral bench` without the corral binary, for measuring the generator
//! before (or apart from) the CLI wiring:
//! `cargo run --release -p corral-bench --example bench -- --self-test -c 8 -d 5s -k`.

use clap::Parser;

/// The same arguments as `corral bench`.
#[derive(Parser)]
#[command(name = "bench")]
struct Cli {
    #[command(flatten)]
    bench: corral_bench::BenchArgs,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match Cli::try_parse_from(&args) {
        Ok(cli) => cli.bench.run(),
        Err(e) => corral_cli::usage::parse_error(&e, corral_cli::usage::wants_json(&args)),
    };
    std::process::exit(code.code());
}
