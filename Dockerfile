# Multi-stage build: compile in the Rust image, run as a non-root user in a slim image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY tests tests
RUN cargo build --release --locked --bin facto

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /app --uid 10001 facto \
    && mkdir -p /app/data /app/out && chown facto:facto /app/data /app/out
WORKDIR /app
COPY --from=build /src/target/release/facto /usr/local/bin/facto
COPY --chown=facto:facto facto.toml ./
COPY --chown=facto:facto connectors connectors
COPY --chown=facto:facto mappings mappings
COPY --chown=facto:facto examples examples
USER facto
# The ledger and the export files live on volumes: they must outlive the container. The folders
# exist and belong to facto, so a new named volume is created writable by it (uid 10001).
VOLUME ["/app/data", "/app/out"]
# The daemon's /health, with bash alone (no curl in the image); `0.0.0.0:8720` answers there too.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/8720 && printf "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n" >&3 && head -n 1 <&3 | grep -q " 200 "'
ENTRYPOINT ["facto"]
# The daemon: every job on its schedule, status polling, the admin API on 127.0.0.1:8720 inside the
# container (README "Docker": listen on 0.0.0.0:8720 with allow_remote to reach it from outside).
# `docker run IMAGE sync` runs one pass instead.
CMD ["run"]
