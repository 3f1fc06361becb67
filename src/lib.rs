//! attention-operator: manage the users of an Attention organisation as Kubernetes resources.

pub mod sandbox;
