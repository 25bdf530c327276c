# The Skirmish image, built from source (needs the rust image from a registry):
#
#   docker build -t skirmish .
#   docker run --rm -p 8080:8080 -e SKIRMISH_DATABASE_URL=postgres://user:pass@db:5432/skirmish skirmish
#
# The binary is static, so the final image is `FROM scratch`: the binary and an empty /data (for the
# default SQLite file), nothing else: no shell, no libc, no CA bundle (TLS uses the roots compiled in).
# It runs as 65532:65532 and answers its HEALTHCHECK with `skirmish healthcheck` (GET /healthz).
#
# TARGET picks the C library linked in:
#   x86_64-unknown-linux-gnu (default): static glibc, `-C target-feature=+crt-static`. glibc >= 2.34
#     has its `files` and `dns` lookups built in, so host names (/etc/hosts, Docker's DNS: the
#     database host `postgres` of deploy/compose.yaml) resolve in the empty image; other NSS
#     sources (LDAP, mDNS, ...) do not exist there.
#   x86_64-unknown-linux-musl: musl (its own resolver; a slower allocator under load):
#     docker build --build-arg TARGET=x86_64-unknown-linux-musl -t skirmish:musl .
# PROFILE=container (thin LTO, see Cargo.toml) builds in a fraction of release's time.
#
# The same by hand, outside Docker:
#   RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu -p server
#   rustup target add x86_64-unknown-linux-musl    # plus musl-tools (musl-gcc) for ring's C code
#   cargo build --release --target x86_64-unknown-linux-musl -p server
# deploy/Dockerfile.prebuilt packages such a host-built binary without a builder image.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS builder
ARG TARGET=x86_64-unknown-linux-gnu
ARG PROFILE=release
RUN if [ "$TARGET" = x86_64-unknown-linux-musl ]; then \
        apt-get update && apt-get install -y --no-install-recommends musl-tools \
        && rm -rf /var/lib/apt/lists/* && rustup target add "$TARGET"; \
    fi
WORKDIR /src
COPY . .
RUN RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --locked --profile "$PROFILE" --target "$TARGET" -p server \
    && cp "target/$TARGET/$PROFILE/skirmish" /skirmish \
    && mkdir /data
# A scratch image has no dynamic loader: refuse a binary that needs one.
RUN if ldd /skirmish 2>&1 | grep -q '=>'; then ldd /skirmish; exit 1; fi

FROM scratch
COPY --from=builder /skirmish /skirmish
# The default database is SQLite in ./data (relative to /); PostgreSQL needs no disk here.
COPY --from=builder --chown=65532:65532 /data /data
USER 65532:65532
ENV SKIRMISH_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/skirmish", "healthcheck"]
ENTRYPOINT ["/skirmish"]
