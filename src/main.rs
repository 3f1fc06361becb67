//! The `attention-operator` binary: parses the command line and wires the parts together.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use attention_operator::attention::HttpClient;
use attention_operator::cli::{Cli, Command, RunArgs};
use attention_operator::{controller, crd, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => {
            print!("{}", crd::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Run(args) => match run(*args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "Cannot start");
                eprintln!("attention-operator: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init(args.log_format, &args.log_level);
    let api = HttpClient::new(args.client_settings(args.api_key()?))?;
    let kube = kube::Client::try_default().await?;
    tracing::info!(
        api_url = %args.api_url,
        namespaces = ?args.namespaces,
        resync_interval = %humantime::format_duration(args.resync_interval),
        "Starting attention-operator"
    );
    controller::run(kube, Arc::new(api), args.controller_settings()).await;
    tracing::info!("Stopped");
    Ok(())
}
