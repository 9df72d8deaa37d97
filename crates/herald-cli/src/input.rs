//! Where a command's data comes from: the argument itself, `@FILE` (a file's content), or
//! `-` / `@-` (standard input), as curl reads `--data`.

use std::io::Read as _;

use anyhow::Context as _;

/// The bytes `arg` stands for.
pub(crate) fn data(arg: &str) -> anyhow::Result<Vec<u8>> {
    match arg.strip_prefix('@') {
        Some("-") => stdin(),
        Some(path) => std::fs::read(path).with_context(|| format!("cannot read the file {path}")),
        None if arg == "-" => stdin(),
        None => Ok(arg.as_bytes().to_vec()),
    }
}

fn stdin() -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read standard input")?;
    Ok(bytes)
}
