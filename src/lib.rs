//! attention-operator: manage the users of an Attention organisation as Kubernetes resources.
#![forbid(unsafe_code)]

pub mod attention;
pub mod controller;
pub mod crd;
pub mod cli;
pub mod directory;
pub mod telemetry;
