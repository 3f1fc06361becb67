//! Development tool: runs the in-memory Attention API sandbox on loopback until stopped.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use attention_operator::sandbox::{
    AuthMode, DEFAULT_API_KEY, Faults, Sandbox, SandboxConfig, SeedUser,
};
use clap::Parser;
use tokio::net::TcpListener;

/// Development tool: an in-memory stand-in for the Attention API, for tests and trying the
/// operator without an account. Not the real API; all state is lost on exit.
#[derive(Parser, Debug)]
#[command(
    name = "attention-sandbox",
    version,
    after_help = "The API key comes from --api-key-file (SANDBOX_API_KEY_FILE), else from the \
                  SANDBOX_API_KEY environment variable, else it is \"sandbox-key\".\n\
                  Control endpoints (no auth): GET/PUT /_sandbox/faults, GET/DELETE \
                  /_sandbox/requests, GET/POST /_sandbox/users, PATCH/DELETE \
                  /_sandbox/users/{uuid}, POST /_sandbox/reset (drops users and requests, \
                  switches faults off). Keep it on loopback."
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SANDBOX_LISTEN", default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// File holding the API key requests must carry.
    #[arg(long, env = "SANDBOX_API_KEY_FILE")]
    api_key_file: Option<PathBuf>,
    /// Accepted Authorization forms: `Bearer <key>`, the bare key, or both.
    #[arg(long, env = "SANDBOX_AUTH_SCHEME", value_enum, default_value_t = AuthMode::Any)]
    auth_scheme: AuthMode,
    /// Fraction (0 to 1) of API requests answered 500.
    #[arg(long, env = "SANDBOX_ERROR_RATE", default_value_t = 0.0)]
    error_rate: f64,
    /// Delay before every API answer, e.g. `200ms`.
    #[arg(long, env = "SANDBOX_LATENCY", value_parser = humantime::parse_duration)]
    latency: Option<Duration>,
    /// Retry-After sent on injected 429s: seconds, or a duration such as `2s`.
    #[arg(long, env = "SANDBOX_RETRY_AFTER", value_parser = parse_seconds)]
    retry_after: Option<u64>,
    /// YAML or JSON list of users to start with (camelCase fields, as the control API).
    #[arg(long, env = "SANDBOX_SEED")]
    seed: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "sandbox failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    tracing::warn!(
        "attention-sandbox is a development tool: in-memory, not the real Attention API"
    );
    let sandbox = start(&args).await?;
    println!("{}", sandbox.base_url());
    tracing::info!(base_url = %sandbox.base_url(), "sandbox ready");
    shutdown_signal().await;
    tracing::info!("shutting down");
    sandbox.shutdown().await;
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn start(args: &Args) -> Result<Sandbox, String> {
    let config = config(args)?;
    let seeds = args.seed.as_deref().map(read_seeds).transpose()?;
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "control endpoints have no auth: keep to loopback");
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("failed to listen on {}: {e}", args.listen))?;
    let sandbox = Sandbox::start(listener, config)
        .await
        .map_err(|e| format!("failed to start the sandbox: {e}"))?;
    for seed in seeds.unwrap_or_default() {
        let email = seed.email.clone();
        sandbox.try_insert_user(seed).map_err(|e| format!("failed to seed {email}: {e}"))?;
    }
    Ok(sandbox)
}

fn config(args: &Args) -> Result<SandboxConfig, String> {
    Ok(SandboxConfig {
        api_key: api_key(args.api_key_file.as_deref())?,
        auth: args.auth_scheme,
        faults: faults(args)?,
    })
}

fn faults(args: &Args) -> Result<Faults, String> {
    let faults = Faults {
        error_rate: args.error_rate,
        latency_ms: args.latency.map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX)),
        retry_after_secs: args.retry_after,
        ..Faults::default()
    };
    faults.validate()?;
    Ok(faults)
}

/// The key from the file, else `SANDBOX_API_KEY`, else the default; never logged.
fn api_key(file: Option<&Path>) -> Result<String, String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("failed to read the api key file {}: {e}", file.display()))?;
        let key = text.trim();
        if key.is_empty() {
            return Err(format!("the api key file {} is empty", file.display()));
        }
        tracing::info!(file = %file.display(), "api key read from file");
        return Ok(key.to_owned());
    }
    if let Ok(key) = std::env::var("SANDBOX_API_KEY")
        && !key.trim().is_empty()
    {
        tracing::info!("api key taken from SANDBOX_API_KEY");
        return Ok(key.trim().to_owned());
    }
    tracing::warn!(key = DEFAULT_API_KEY, "no api key given: using the default key");
    Ok(DEFAULT_API_KEY.to_owned())
}

fn read_seeds(path: &Path) -> Result<Vec<SeedUser>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("failed to read the seed file {}: {e}", path.display()))?;
    serde_yaml::from_str(&text)
        .map_err(|e| format!("failed to parse the seed file {}: {e}", path.display()))
}

/// Whole seconds, given bare (`2`) or as a duration (`2s`, `1500ms` rounds up).
fn parse_seconds(text: &str) -> Result<u64, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    Ok(duration.as_secs() + u64::from(duration.subsec_nanos() > 0))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "failed to watch SIGTERM: only ctrl-c stops the sandbox");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_durations() {
        assert_eq!(parse_seconds("7"), Ok(7));
        assert_eq!(parse_seconds("2s"), Ok(2));
        assert_eq!(parse_seconds("1500ms"), Ok(2));
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn the_api_key_is_not_a_flag() {
        let parsed = Args::try_parse_from(["attention-sandbox", "--api-key", "k"]);
        assert!(parsed.is_err());
    }

    fn parse(flags: &[&str]) -> Args {
        let program = std::iter::once("attention-sandbox");
        Args::try_parse_from(program.chain(flags.iter().copied())).unwrap()
    }

    #[test]
    fn fault_flags_become_faults() {
        let args = parse(&["--latency", "200ms", "--error-rate", "0.25", "--retry-after", "3"]);
        let expected = Faults {
            latency_ms: 200,
            error_rate: 0.25,
            retry_after_secs: Some(3),
            ..Faults::default()
        };
        assert_eq!(faults(&args), Ok(expected));
        assert_eq!(parse(&["--auth-scheme", "raw"]).auth_scheme, AuthMode::Raw);
    }

    #[test]
    fn an_error_rate_above_one_is_refused() {
        assert!(faults(&parse(&["--error-rate", "1.5"])).is_err());
    }
}
