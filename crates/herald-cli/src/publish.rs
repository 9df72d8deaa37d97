//! `herald publish`: send one update to a Mercure hub and print its ID.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// Publish one update to a hub and print the ID the hub gave it.
///
/// Exit status: 0 when the hub accepted the update; 1 when it refused it (its status and
/// reason are printed) or could not be reached.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  herald publish --token \"$TOKEN\" --topic https://example.com/books/1 --data '{\"stock\":3}'
  herald publish --token \"$TOKEN\" --topic https://example.com/books/1 --data @update.json
  ./report | herald publish --token \"$TOKEN\" --topic urn:reports --data - --private
  herald publish --hub https://hub.example.com/.well-known/mercure --cacert ca.pem \\
      --token \"$TOKEN\" --topic https://example.com/books/1 --type stock --id s-42 --data 3")]
pub(crate) struct Args {
    /// The hub's URL (`http` or `https`).
    #[arg(
        long,
        env = "HERALD_HUB",
        default_value = "http://127.0.0.1:8080/.well-known/mercure"
    )]
    hub: url::Url,
    /// The update's topic; repeat it for alternate topics (the first is the canonical one).
    #[arg(long, required = true)]
    topic: Vec<String>,
    /// The payload; @FILE reads it from a file, - (or @-) from standard input.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    data: String,
    /// Deliver only to subscribers whose token allows it.
    #[arg(long)]
    private: bool,
    /// The update's ID (the hub generates one if absent).
    #[arg(long)]
    id: Option<String>,
    /// The SSE event type.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// The reconnection time, in milliseconds, asked of subscribers.
    #[arg(long)]
    retry: Option<u64>,
    /// The publisher's JWT.
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A PEM file of extra root certificates to trust (a hub with a private CA); the public
    /// web roots are always trusted.
    #[arg(long, value_name = "PEM_FILE")]
    cacert: Option<PathBuf>,
}

impl Args {
    fn form(&self, data: &str) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for topic in &self.topic {
            form.append_pair("topic", topic);
        }
        form.append_pair("data", data);
        if self.private {
            form.append_pair("private", "on");
        }
        if let Some(id) = &self.id {
            form.append_pair("id", id);
        }
        if let Some(event_type) = &self.event_type {
            form.append_pair("type", event_type);
        }
        if let Some(retry) = self.retry {
            form.append_pair("retry", &retry.to_string());
        }
        form.finish()
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data = String::from_utf8(crate::input::data(&args.data)?)
        .map_err(|_| anyhow::anyhow!("the data ({}) is not UTF-8 text", args.data))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let id = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), post(&args, &data))
            .await
            .context("the hub did not answer within 30 s")?
    })?;
    #[allow(clippy::print_stdout)]
    {
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP/1.1 client for `http` and `https` URLs, trusting the web's public roots and `cacert`.
pub(crate) fn client(cacert: Option<&Path>) -> anyhow::Result<HttpsClient> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = cacert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate =
                certificate.with_context(|| format!("a certificate in {}", path.display()))?;
            roots
                .add(certificate)
                .with_context(|| format!("an unusable certificate in {}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS configuration")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Sends `request` to the hub at `url` and reads its whole answer: the status and the body as
/// text, trailing line breaks trimmed.
pub(crate) async fn exchange(
    client: &HttpsClient,
    request: http::Request<Full<Bytes>>,
    url: &str,
) -> anyhow::Result<(http::StatusCode, String)> {
    let response = client
        .request(request)
        .await
        .with_context(|| format!("cannot reach the hub at {url}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).trim_end().to_owned()))
}

async fn post(args: &Args, data: &str) -> anyhow::Result<String> {
    let url = &args.hub;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("the hub URL must be http or https: {url}");
    }
    let client = client(args.cacert.as_deref())?;
    let mut request = http::Request::post(url.as_str()).header(
        http::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    );
    if let Some(token) = &args.token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(args.form(data))))
        .context("building the request")?;
    let (status, body) = exchange(&client, request, url.as_str()).await?;
    if !status.is_success() {
        bail!("the hub refused the update: {status}: {body}");
    }
    Ok(body)
}
