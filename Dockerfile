# Forklift: build the server, then run it on a slim base as an unprivileged user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY entity entity
COPY migration migration
COPY src src
RUN cargo build --release --locked --bin forklift

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app --uid 10001 forklift
WORKDIR /app
COPY --from=build /src/target/release/forklift /usr/local/bin/forklift
# The template's provisioning sheets: `serve` imports them when it bootstraps an empty database.
COPY sheets sheets
RUN chown -R forklift /app
USER forklift
ENV FORKLIFT_ADDR=0.0.0.0:8080 \
    FORKLIFT_ENV=production \
    FORKLIFT_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
CMD ["forklift", "serve"]
