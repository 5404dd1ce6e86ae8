//! `aim`: the control plane (`aim serve`) and the client commands, in one binary.

mod args;
mod commands;
mod exit;
mod output;

fn main() -> std::process::ExitCode {
    commands::main()
}
