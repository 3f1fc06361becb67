//! The command line: subcommands, and every setting of `run` as a flag with an environment
//! variable.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use url::Url;

use crate::attention::{AuthScheme, ClientSettings};
use crate::controller::Settings;
use crate::crd::DeletionPolicy;
use crate::leader::{Election, LEASE_SECONDS};

/// Environment variable that may hold the API key itself. Deliberately not a flag: command
/// lines show in `ps`.
pub const API_KEY_ENV: &str = "ATTENTION_API_KEY";

#[derive(Debug, Parser)]
#[command(
    name = "attention-operator",
    version,
    about = "Manage Attention users as Kubernetes resources"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller against the cluster of the current kubeconfig or the pod's service
    /// account.
    Run(Box<RunArgs>),
    /// Print the AttentionUser CustomResourceDefinition as YAML.
    Crd,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Root of the Attention API, including the version.
    #[arg(long, env = "ATTENTION_API_URL", default_value = "https://api.attention.tech/v2")]
    pub api_url: Url,

    /// File holding the API key. Without it, the key is read from ATTENTION_API_KEY.
    #[arg(long, env = "ATTENTION_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,

    /// How the key is sent in the Authorization header: `Bearer <key>` or the bare key.
    #[arg(long, env = "ATTENTION_AUTH_SCHEME", value_enum, default_value_t = AuthScheme::Bearer)]
    pub auth_scheme: AuthScheme,

    /// How often each healthy user is checked again against Attention (e.g. 30s, 10m).
    #[arg(long, env = "ATTENTION_RESYNC_INTERVAL", default_value = "10m", value_parser = duration)]
    pub resync_interval: Duration,

    /// Namespaces to watch, repeated or comma-separated; all namespaces when not given.
    #[arg(long = "namespace", env = "ATTENTION_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// AttentionUsers reconciled at once (per watched namespace).
    #[arg(long, env = "ATTENTION_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Requests per second sent to Attention, shared by all reconciles.
    #[arg(long, env = "ATTENTION_REQUESTS_PER_SECOND", default_value = "5")]
    pub requests_per_second: NonZeroU32,

    /// Requests to Attention under way at once, shared by all reconciles.
    #[arg(long, env = "ATTENTION_MAX_IN_FLIGHT", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_in_flight: u16,

    /// Longest a request to Attention may take, connection included.
    #[arg(long, env = "ATTENTION_REQUEST_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub request_timeout: Duration,

    /// Oldest the shared list of the organisation's users may be when a new user is looked up.
    #[arg(long, env = "ATTENTION_CACHE_MAX_AGE", default_value = "30s", value_parser = duration)]
    pub cache_max_age: Duration,

    /// Longest wait between retries of a failing user.
    #[arg(long, env = "ATTENTION_MAX_RETRY_DELAY", default_value = "5m", value_parser = duration)]
    pub max_retry_delay: Duration,

    /// How often a user whose spec cannot succeed is tried again while the spec is unchanged.
    #[arg(long, env = "ATTENTION_INVALID_RETRY_INTERVAL", default_value = "30m",
          value_parser = duration)]
    pub invalid_retry_interval: Duration,

    /// What deleting an AttentionUser does to its Attention user when its spec sets no
    /// deletionPolicy: `retain` leaves it, `delete` deletes it.
    #[arg(long, env = "ATTENTION_DEFAULT_DELETION_POLICY", value_enum,
          default_value_t = DeletionPolicy::Retain)]
    pub default_deletion_policy: DeletionPolicy,

    /// Address of the HTTP server for /healthz, /readyz and /metrics.
    #[arg(long, env = "ATTENTION_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Log lines as human-readable text or as JSON objects.
    #[arg(long, env = "ATTENTION_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter when RUST_LOG is not set, such as `info` or `attention_operator=debug`.
    #[arg(long, env = "ATTENTION_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Run the controller only while this replica holds a Lease, so that several replicas can
    /// run and one of them acts.
    #[arg(long, env = "ATTENTION_LEADER_ELECTION", default_value_t = false,
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub leader_election: bool,

    /// Name of the Lease the replicas compete for.
    #[arg(long, env = "ATTENTION_LEASE_NAME", default_value = "attention-operator")]
    pub lease_name: String,

    /// Namespace of the Lease; empty means the pod's own (outside a pod, the kubeconfig's).
    #[arg(long, env = "ATTENTION_LEASE_NAMESPACE", default_value = "")]
    pub lease_namespace: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Why the API key could not be loaded. No variant carries the key or the file's contents.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no API key: set ATTENTION_API_KEY_FILE to a file holding it, or ATTENTION_API_KEY")]
    Missing,
    #[error("failed to read the API key file {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("the API key is empty")]
    Empty,
}

impl RunArgs {
    /// The API key from the file if one is named, else from ATTENTION_API_KEY.
    pub fn api_key(&self) -> Result<String, KeyError> {
        let key = match &self.api_key_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| KeyError::Unreadable { path: path.clone(), source })?,
            None => std::env::var(API_KEY_ENV).map_err(|_| KeyError::Missing)?,
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(key.to_owned())
    }

    pub fn client_settings(&self, api_key: String) -> ClientSettings {
        ClientSettings {
            base_url: self.api_url.clone(),
            api_key,
            auth_scheme: self.auth_scheme,
            timeout: self.request_timeout,
            requests_per_second: self.requests_per_second,
            max_in_flight: usize::from(self.max_in_flight),
        }
    }

    /// The election this replica takes part in, if leader election is on: the Lease lives in
    /// `lease_namespace`, else in `default_namespace`; the replica is named after its pod
    /// (POD_NAME), or at random outside a pod.
    pub fn election(&self, default_namespace: &str) -> Option<Election> {
        self.leader_election.then(|| Election {
            lease_name: self.lease_name.clone(),
            namespace: match self.lease_namespace.as_str() {
                "" => default_namespace.to_owned(),
                namespace => namespace.to_owned(),
            },
            identity: std::env::var("POD_NAME").unwrap_or_else(|_| {
                format!("attention-operator-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
            }),
            lease_seconds: LEASE_SECONDS,
        })
    }

    pub fn controller_settings(&self) -> Settings {
        Settings {
            resync_interval: self.resync_interval,
            await_change_retry: self.invalid_retry_interval,
            backoff_cap: self.max_retry_delay,
            directory_max_age: self.cache_max_age,
            concurrency: self.concurrency,
            namespaces: self.namespaces.clone(),
            default_deletion_policy: self.default_deletion_policy,
            ..Settings::default()
        }
    }
}

fn duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn run_args(args: &[&str]) -> RunArgs {
        let mut argv = vec!["attention-operator", "run"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(args) => *args,
            Command::Crd => unreachable!("parsed run"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_set_every_setting() {
        let args = run_args(&[
            "--api-url=http://127.0.0.1:8089/v2",
            "--auth-scheme=raw",
            "--resync-interval=30s",
            "--namespace=team-a,team-b",
            "--concurrency=8",
            "--requests-per-second=2",
            "--max-in-flight=1",
            "--request-timeout=5s",
            "--cache-max-age=1m",
            "--max-retry-delay=2m",
            "--invalid-retry-interval=1h",
            "--log-format=json",
            "--metrics-addr=127.0.0.1:9090",
            "--default-deletion-policy=delete",
            "--leader-election",
            "--lease-name=attention-lease",
            "--lease-namespace=platform",
        ]);
        assert_eq!(args.auth_scheme, AuthScheme::Raw);
        assert_eq!(args.namespaces, ["team-a", "team-b"]);
        let settings = args.controller_settings();
        assert_eq!(settings.resync_interval, Duration::from_secs(30));
        assert_eq!(settings.concurrency, 8);
        assert_eq!(settings.directory_max_age, Duration::from_secs(60));
        assert_eq!(settings.backoff_cap, Duration::from_secs(120));
        assert_eq!(settings.await_change_retry, Duration::from_secs(3600));
        let client = args.client_settings("k".into());
        assert_eq!(client.base_url.as_str(), "http://127.0.0.1:8089/v2");
        assert_eq!(client.requests_per_second.get(), 2);
        assert_eq!(client.max_in_flight, 1);
        assert_eq!(client.timeout, Duration::from_secs(5));
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(args.metrics_addr.to_string(), "127.0.0.1:9090");
        assert_eq!(settings.default_deletion_policy, DeletionPolicy::Delete);
        let election = args.election("attention-system").unwrap();
        assert_eq!(election.lease_name, "attention-lease");
        assert_eq!(election.namespace, "platform");
    }

    #[test]
    fn leader_election_is_off_unless_asked_for() {
        assert_eq!(run_args(&[]).election("attention-system"), None);
        let on = run_args(&["--leader-election=true"]).election("attention-system").unwrap();
        assert_eq!(
            (on.lease_name.as_str(), on.namespace.as_str()),
            ("attention-operator", "attention-system")
        );
        assert!(!on.identity.is_empty());
        assert_eq!(run_args(&["--leader-election=false"]).election("x"), None);
    }

    #[test]
    fn defaults_talk_to_the_real_api() {
        let args = run_args(&[]);
        assert_eq!(args.api_url.as_str(), "https://api.attention.tech/v2");
        assert_eq!(args.auth_scheme, AuthScheme::Bearer);
        assert_eq!(args.resync_interval, Duration::from_secs(600));
        assert!(args.namespaces.is_empty());
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["--concurrency=0", "--resync-interval=soon", "--requests-per-second=0"] {
            assert!(Cli::try_parse_from(["attention-operator", "run", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn there_is_no_flag_for_the_key_itself() {
        let parsed = Cli::try_parse_from(["attention-operator", "run", "--api-key=abc"]);
        assert!(parsed.is_err());
    }

    #[test]
    fn the_key_file_is_read_and_trimmed() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "  key-from-file  ").unwrap();
        let path = file.path().to_str().unwrap().to_owned();
        let args = run_args(&[&format!("--api-key-file={path}")]);
        assert_eq!(args.api_key().unwrap(), "key-from-file");
    }

    #[test]
    fn key_errors_do_not_show_the_contents() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "   ").unwrap();
        let path = file.path().to_str().unwrap().to_owned();
        let args = run_args(&[&format!("--api-key-file={path}")]);
        assert_eq!(args.api_key().unwrap_err().to_string(), "the API key is empty");
        let missing = run_args(&["--api-key-file=/nonexistent/key"]);
        let error = missing.api_key().unwrap_err().to_string();
        assert!(error.starts_with("failed to read the API key file /nonexistent/key"), "{error}");
    }
}
