//! The Attention REST API as the operator sees it: a narrow trait, its types and errors.

mod error;
mod http;
mod wire;

pub use error::{ApiError, excerpt, redact};
pub use http::{AuthScheme, BuildError, ClientSettings, HttpClient, install_crypto_provider};
pub use wire::{
    NewTeam, NewUser, Password, RemoteRef, RemoteRole, RemoteTeam, RemoteUser, UserUpdate,
};

use async_trait::async_trait;

/// One method per remote call the operator makes.
#[async_trait]
pub trait AttentionApi: Send + Sync {
    /// Every user of the organisation the API key belongs to.
    async fn list_users(&self) -> Result<Vec<RemoteUser>, ApiError>;

    /// Creates a user; answers the user as Attention created it.
    async fn create_user(&self, user: &NewUser) -> Result<RemoteUser, ApiError>;

    /// Changes a user; answers the user as Attention changed it.
    async fn update_user(&self, uuid: &str, update: &UserUpdate) -> Result<RemoteUser, ApiError>;

    /// Deletes a user. Not in Attention's reference: `NotFound` may mean the user is gone or
    /// that the call is not supported, `Rejected` with 405 that it is not supported.
    async fn delete_user(&self, uuid: &str) -> Result<(), ApiError>;
}
