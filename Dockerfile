# syntax=docker/dockerfile:1
# The attention-operator image: one static binary on distroless, run as a non-root user.
#   docker build -t attention-operator .

# Build: Alpine's Rust targets musl and links statically, so the binary needs no libc at run
# time. gcc and musl-dev compile and link ring's C and assembly parts (the image may already
# ship gcc; naming it keeps the build independent of that).
FROM rust:1-alpine AS build
RUN apk add --no-cache gcc musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cargo.toml names the benchmark target, so its source must be there for the manifest to load.
COPY benches ./benches
# The cache mounts keep the registry and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin attention-operator \
    && cp target/release/attention-operator /attention-operator

# Run: distroless static has no shell or package manager, but does have CA certificates in
# /etc/ssl/certs (read by rustls-platform-verifier for TLS to the Attention API) and the
# nonroot user 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /attention-operator /attention-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/attention-operator"]
CMD ["run"]
