//! What every demo's `main` does: listen on the address given as the first argument (or the
//! demo's default), say where, and serve.

use std::net::SocketAddr;

/// The address to listen on: the first command-line argument, else `default`.
pub(crate) fn addr(default: &str) -> std::io::Result<SocketAddr> {
    let text = std::env::args()
        .nth(1)
        .unwrap_or_else(|| default.to_owned());
    text.parse().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{text:?} is not an address like 127.0.0.1:3000: {e}"),
        )
    })
}

/// Serves `app` on `addr` until the process is stopped, after printing the page's URL.
#[allow(clippy::print_stdout)]
pub(crate) async fn serve(app: axum::Router, addr: SocketAddr, what: &str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "{what}: open http://{}/ (Ctrl-C stops)",
        listener.local_addr()?
    );
    axum::serve(listener, app).await
}
