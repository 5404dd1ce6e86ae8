//! `aim`: the control plane (`aim serve`) and the client commands, in one binary.

// A decision allocates many small, short-lived objects (Cedar's entities, JSON, the
// record); mimalloc serves them ~8 % faster than glibc's malloc under load
// (BENCHMARKS.md, `/v1/authorize` A/B), for ~40 MiB more resident memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod commands;
mod exit;
mod output;

fn main() -> std::process::ExitCode {
    commands::main()
}
