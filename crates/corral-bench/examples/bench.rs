//! `corral bench` without the corral binary, for measuring the generator
//! before (or apart from) the CLI wiring:
//! `cargo run --release -p corral-bench --example bench -- --self-test -c 8 -d 5s -k`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(corral_bench::main(&args));
}
