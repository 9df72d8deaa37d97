//! `herald`: the command-line front of Herald, a Server-Sent Events toolkit.

mod bench;
mod decode;
mod listen;
mod publish;
mod serve;

use clap::{Parser, Subcommand};

/// Herald: Server-Sent Events done right.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Decode(decode::Args),
    Listen(listen::Args),
    Serve(serve::Args),
    Publish(publish::Args),
    Bench(bench::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Listen(args) => listen::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("herald: {error:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
