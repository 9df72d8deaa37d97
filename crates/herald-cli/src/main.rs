//! `herald`: the command-line front of Herald, a Server-Sent Events toolkit.

mod admin;
mod bench;
mod decode;
mod input;
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

/// The commands, the main job first.
#[derive(Debug, Subcommand)]
enum Command {
    Serve(serve::Args),
    Publish(publish::Args),
    Listen(listen::Args),
    Decode(decode::Args),
    #[command(after_help = "Examples:
  herald bench fanout --hub http://127.0.0.1:8080/.well-known/mercure --token \"$TOKEN\" \\
      --subscribers 1000 --messages 2000 --rate 1000 --hub-pid \"$(pgrep -x herald)\"
  herald bench connections --hub http://127.0.0.1:8080/.well-known/mercure --subscribers 10000
  herald bench fanout --hub http://127.0.0.1:8081/sub --publish-style nchan \\
      --publish-url http://127.0.0.1:8081/pub --subscribers 100 --json")]
    Bench(bench::Args),
    Admin(admin::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Listen(args) => listen::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Admin(args) => admin::run(args),
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
