//! attention-operator: manage the users of an Attention organisation as Kubernetes resources.
#![forbid(unsafe_code)]

pub mod attention;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod directory;
pub mod leader;
pub mod metrics;
pub mod rbac;
pub mod sandbox;
pub mod server;
pub mod telemetry;
