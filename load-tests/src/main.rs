//! skirmish-bots. Until the load-test issue lands it only checks that a server answers `/healthz`.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "skirmish-bots",
    about = "Load-test a Skirmish server with bot clients"
)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let response = reqwest::get(format!("{}/healthz", args.url.trim_end_matches('/'))).await?;
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "{} answered /healthz with {status}",
        args.url
    );
    eprintln!("{} is healthy: {}", args.url, response.text().await?);
    Ok(())
}
