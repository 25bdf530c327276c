# syntax=docker/dockerfile:1
# The Skirmish image, built from source (needs the rust image from a registry):
#
#   docker build -t skirmish .
#   docker run --rm -p 8080:8080 -e SKIRMISH_DATABASE_URL=postgres://... skirmish
#
# The binary is static, so the final image is `FROM scratch`: the binary, an empty /data for the
# default SQLite file, nothing else (no shell, no libc, no CA bundle: TLS uses the roots compiled in).
#
# TARGET picks the C library linked in:
#   x86_64-unknown-linux-musl (default): musl's own resolver is in the binary, so host names (a
#     database host `postgres` in deploy/compose.yaml, on Docker's DNS) resolve in an empty image.
#   x86_64-unknown-linux-gnu: static glibc (`-C target-feature=+crt-static`). glibc cannot load
#     its NSS modules in a static binary, so in this image it resolves NO host names: give the
#     database as a numeric address (postgres://user@10.0.0.5:5432/db). This is also what
#     deploy/Dockerfile.prebuilt packages, from a binary built on the host; see README.md.
#
#   docker build --build-arg TARGET=x86_64-unknown-linux-gnu -t skirmish:gnu .
#
# By hand, outside Docker, the musl build is
#   rustup target add x86_64-unknown-linux-musl   # and musl-tools (musl-gcc) for ring's C code
#   cargo build --release --target x86_64-unknown-linux-musl -p server
# and the static glibc build
#   RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu -p server
#
# PROFILE=container (thin LTO, see Cargo.toml) builds in a fraction of release's time.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS builder
ARG TARGET=x86_64-unknown-linux-musl
ARG PROFILE=release
RUN if [ "$TARGET" = x86_64-unknown-linux-musl ]; then \
        apt-get update && apt-get install -y --no-install-recommends musl-tools \
        && rm -rf /var/lib/apt/lists/* && rustup target add "$TARGET"; \
    fi
WORKDIR /src
COPY . .
# crt-static: a static binary for either C library (musl's default; glibc's on request).
RUN RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --locked --profile "$PROFILE" --target "$TARGET" -p server \
    && cp "target/$TARGET/$PROFILE/skirmish" /skirmish \
    && mkdir /data
# Check that nothing is dynamically linked: a scratch image has no loader to run it.
RUN ! ldd /skirmish 2>/dev/null | grep -q '=>' && /skirmish healthcheck bogus-arg; [ $? -eq 2 ]

FROM scratch
COPY --from=builder /skirmish /skirmish
# The default database is SQLite in ./data (relative to /); PostgreSQL needs no disk here.
COPY --from=builder --chown=65532:65532 /data /data
USER 65532:65532
ENV SKIRMISH_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/skirmish", "healthcheck"]
ENTRYPOINT ["/skirmish"]
