//! The `attention-operator` binary: parses the command line and wires the parts together.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;

use attention_operator::attention::HttpClient;
use attention_operator::cli::{Cli, Command, RunArgs};
use attention_operator::controller::{self, Context};
use attention_operator::metrics::Metrics;
use attention_operator::server::{self, Health};
use attention_operator::{crd, leader, telemetry};

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
                tracing::error!(%error, "Stopped on an error");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init(args.log_format, &args.log_level);
    let metrics = Arc::new(Metrics::new());
    let api = HttpClient::new(args.client_settings(args.api_key()?))?.with_metrics(metrics.clone());
    let kube = kube::Client::try_default().await?;
    let listener = TcpListener::bind(args.metrics_addr).await?;
    let election = args.election(kube.default_namespace());
    let settings = args.controller_settings();
    let ctx = Arc::new(Context::new(kube.clone(), Arc::new(api), settings, metrics.clone()));
    let health = Health::default();
    tracing::info!(
        api_url = %args.api_url,
        namespaces = ?args.namespaces,
        metrics_addr = %args.metrics_addr,
        leader_election = args.leader_election,
        "Starting attention-operator"
    );
    let controller = controller::run(ctx, health.clone());
    let work = async {
        match &election {
            Some(election) => leader::lead(kube, election, &health, controller).await,
            None => {
                controller.await;
                Ok(())
            }
        }
    };
    tokio::select! {
        done = work => done?,
        served = server::serve(listener, health.clone(), metrics) => served?,
    }
    tracing::info!("Stopped");
    Ok(())
}
