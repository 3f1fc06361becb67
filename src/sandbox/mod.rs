//! Development tool: an in-memory, stateful stand-in for the Attention API, for tests and demos.
//!
//! It serves the documented user endpoints under `/v2` with the API's odd field names and
//! quirks, records every API request (passwords redacted), injects faults on demand and
//! exposes unauthenticated control endpoints under `/_sandbox/`. State lives in memory only.
//! It is not the real API and not meant to be reachable from anything but loopback.

mod auth;
mod control;
mod faults;
mod routes;
mod state;
mod validate;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use auth::AuthMode;
pub use faults::Faults;
pub use state::{RecordedRequest, SeatType, SeedTeam, SeedUser};

use auth::KeyCheck;
use state::Store;

/// The API key the sandbox expects when none is configured.
pub const DEFAULT_API_KEY: &str = "sandbox-key";

/// The most recorded requests kept; older ones are dropped first.
const MAX_RECORDED: usize = 10_000;

/// How long [`Sandbox::shutdown`] waits for answers in flight before it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How a sandbox starts: its API key, accepted header forms and initial faults.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The key requests must carry in `Authorization`.
    pub api_key: String,
    /// Which `Authorization` forms are accepted.
    pub auth: AuthMode,
    /// Faults switched on from the start.
    pub faults: Faults,
}

impl SandboxConfig {
    /// A config expecting `api_key` in any form, with no faults.
    pub fn new(api_key: impl Into<String>) -> Self {
        SandboxConfig {
            api_key: api_key.into(),
            auth: AuthMode::default(),
            faults: Faults::default(),
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig::new(DEFAULT_API_KEY)
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("api_key", &"<redacted>")
            .field("auth", &self.auth)
            .field("faults", &self.faults)
            .finish()
    }
}

/// Why a user could not be put into the sandbox through a checked path.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeedError {
    /// A field is missing or malformed; the message names it.
    #[error("invalid user: {0}")]
    Invalid(String),
    /// Another user already has this email, compared case-insensitively.
    #[error("a user with this email already exists")]
    DuplicateEmail,
}

/// State shared by the server's handlers and the [`Sandbox`] handle.
pub(crate) struct Shared {
    keys: KeyCheck,
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    requests: Mutex<VecDeque<RecordedRequest>>,
}

/// Locks `mutex`, going on with the data if a holder panicked: every update is a single step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn new(config: SandboxConfig) -> Self {
        Shared {
            keys: KeyCheck::new(config.api_key, config.auth),
            store: Mutex::new(Store::new()),
            faults: Mutex::new(config.faults),
            requests: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn keys(&self) -> &KeyCheck {
        &self.keys
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        let mut requests = lock(&self.requests);
        if requests.len() == MAX_RECORDED {
            requests.pop_front();
        }
        requests.push_back(request);
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).iter().cloned().collect()
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.requests).clear();
    }

    /// Inserts `seed` after the checks a create body gets; answers the new UUID.
    pub(crate) fn try_insert(&self, seed: SeedUser) -> Result<String, SeedError> {
        validate::check_seed(&seed).map_err(SeedError::Invalid)?;
        let mut store = self.store();
        if store.email_taken(&seed.email) {
            return Err(SeedError::DuplicateEmail);
        }
        Ok(store.insert(seed))
    }

    /// Drops every user and recorded request and switches every fault off.
    pub(crate) fn reset(&self) {
        self.store().clear();
        self.clear_requests();
        *self.faults() = Faults::default();
    }
}

/// A running sandbox server; dropping it shuts the server down too.
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Serves the sandbox on `listener` from a spawned task.
    pub async fn start(listener: TcpListener, config: SandboxConfig) -> std::io::Result<Sandbox> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let app = routes::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            // A dropped sender also means stop.
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { server.await });
        tracing::debug!(%addr, "sandbox listening");
        Ok(Sandbox { shared, addr, stop: Some(stop), task: Some(task) })
    }

    /// Serves the sandbox on a free loopback port.
    pub async fn start_local(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        Sandbox::start(listener, config).await
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, e.g. `http://127.0.0.1:PORT/v2`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// The faults in force now, counters as far as they have counted down.
    pub fn faults(&self) -> Faults {
        self.shared.faults().clone()
    }

    /// Replaces every fault switch at once.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults() = faults;
    }

    /// The API requests received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Every user as a list answer shows it, in creation order.
    pub fn users(&self) -> Vec<Value> {
        self.shared.store().list(None)
    }

    /// Stores `seed` as it is, without checks, auth or faults; answers the new user's UUID.
    ///
    /// Lets a test build any state, even one the API would refuse (a repeated email, say).
    pub fn insert_user(&self, seed: SeedUser) -> String {
        self.shared.store().insert(seed)
    }

    /// Stores `seed` after the checks a create body gets (fields, unique email).
    pub fn try_insert_user(&self, seed: SeedUser) -> Result<String, SeedError> {
        self.shared.try_insert(seed)
    }

    /// Changes a user behind the operator's back with the semantics of `PATCH`.
    ///
    /// False when the user is unknown or the patch is invalid (then nothing changes).
    pub fn update_user(&self, uuid: &str, patch: Value) -> bool {
        let Ok(patch) = validate::parse_patch(&patch) else {
            return false;
        };
        self.shared.store().update(uuid, patch).is_ok()
    }

    /// Deletes a user behind the operator's back; false when unknown.
    pub fn remove_user(&self, uuid: &str) -> bool {
        self.shared.store().remove(uuid)
    }

    /// True when the user with `email` (any case) has exactly this password.
    pub fn password_matches(&self, email: &str, password: &str) -> bool {
        self.shared.store().password_matches(email, password)
    }

    /// Drops every user and recorded request and switches every fault off.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server, waiting briefly for answers in flight.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else {
            return;
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(Err(error))) => tracing::warn!(%error, "sandbox server failed"),
            Ok(_) => {}
            Err(_) => task.abort(),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
