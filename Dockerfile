# syntax=docker/dockerfile:1
# pki-issuer container image.
#
#   docker build -t pki-issuer:dev .
#
# Builder: the Rust toolchain on Debian 12 (glibc), so the binary links the same glibc as the
# runtime image. aws-lc-rs is compiled from C here and links glibc dynamically, which is why
# the runtime is distroless `cc` (glibc, libgcc, libssl-free) and not `static`.
FROM docker.io/library/rust:1-bookworm AS builder
WORKDIR /src
# The whole workspace is needed: Cargo.lock covers the e2e crates too and `--locked` checks it.
# .dockerignore keeps target/ and .git/ out of the context.
COPY . .
# BuildKit cache mounts keep the crates.io registry and the target directory between builds;
# the binary is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin pki-issuer \
    && install -D -m 0755 target/release/pki-issuer /out/pki-issuer

# Runtime: no shell, no package manager, runs as the distroless `nonroot` user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="pki-issuer" \
      org.opencontainers.image.description="cert-manager external issuer that signs with an intermediate CA rooted in an existing PKI" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/pki-issuer /pki-issuer
USER 65532:65532
# 8080: /metrics, 8081: /healthz and /readyz.
EXPOSE 8080 8081
ENTRYPOINT ["/pki-issuer"]
