# syntax=docker/dockerfile:1
# Forklift's image: the server built in release mode, run as an unprivileged user on Debian slim
# with the template's provisioning sheets.
#
#   docker build -t forklift .
#   docker run --rm -p 8080:8080 -e FORKLIFT_JWT_SECRET="$(openssl rand -hex 32)" forklift
#
# The image runs in production mode. It needs FORKLIFT_JWT_SECRET (or FORKLIFT_JWT_PUBLIC_KEY /
# FORKLIFT_JWKS) and never generates one. Without DATABASE_URL it keeps a SQLite file in
# /app/data (mount a volume there). docker-compose.yml runs it on PostgreSQL instead.

# ---- build: the release binary ----------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY entity entity
COPY migration migration
COPY src src
# Compiled into the binary: GraphiQL's vendored assets and the example template.
COPY ui/vendor ui/vendor
COPY sheets sheets
# Optional cargo features, e.g. `docker build --build-arg FEATURES=otel .` for OpenTelemetry.
ARG FEATURES=""
# The cache mounts keep downloaded crates and compiled dependencies between builds. The binary
# is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin forklift --features "${FEATURES}" \
 && install -m 0755 target/release/forklift /usr/local/bin/forklift

# ---- runtime -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin forklift
WORKDIR /app
COPY --from=build /usr/local/bin/forklift /usr/local/bin/forklift
# The template: `serve` imports sheets/ (relative to /app) when it bootstraps an empty database.
# (Without it, the example template built into the binary is used.) GraphiQL's assets are built
# into the binary too (ui/vendor/, src/http/ui.rs).
COPY sheets sheets
RUN mkdir -p /app/data && chown -R forklift:forklift /app
USER forklift
ENV FORKLIFT_ADDR=0.0.0.0:8080 \
    FORKLIFT_ENV=production \
    FORKLIFT_LOG_FORMAT=json \
    DATABASE_URL=sqlite:///app/data/forklift.db?mode=rwc
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
CMD ["forklift", "serve"]
