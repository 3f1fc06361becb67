# One recipe per developer action; CI runs `make test`, exactly as a person does.
.PHONY: help generate fmt lint test run sandbox cluster-test

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

generate: ## Regenerate the CRD YAML from the Rust types (crds/ and the chart's copy)
	cargo run --quiet --locked --bin attention-operator -- crd > crds/attentionuser.yaml
	@if [ -d charts/attention-operator/crds ]; then \
		cp crds/attentionuser.yaml charts/attention-operator/crds/attentionuser.yaml; fi

fmt: ## Format the code
	cargo fmt --all

lint: ## Check formatting and clippy with warnings denied
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings

test: lint ## Lint, then run every test that needs no cluster
	cargo test --locked --all-targets

run: ## Run the operator against the current kubeconfig (settings from ATTENTION_* variables)
	cargo run --release --locked --bin attention-operator -- run

sandbox: ## Run the local stand-in of the Attention API on 127.0.0.1:8089
	cargo run --release --locked --bin attention-sandbox -- --seed examples/sandbox-seed.yaml

cluster-test: ## Run the cluster tests against the cluster of KUBECONFIG
	cargo test --locked --test cluster -- --ignored --test-threads=1
