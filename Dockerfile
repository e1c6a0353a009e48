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
    && useradd --system --create-home --home-dir /app --uid 10001 facto
WORKDIR /app
COPY --from=build /src/target/release/facto /usr/local/bin/facto
COPY --chown=facto:facto facto.toml ./
COPY --chown=facto:facto connectors connectors
COPY --chown=facto:facto mappings mappings
COPY --chown=facto:facto examples examples
USER facto
# The ledger and the export files live on volumes: they must outlive the container.
VOLUME ["/app/data", "/app/out"]
ENTRYPOINT ["facto"]
# The daemon: every job on its schedule, status polling, the admin API on 127.0.0.1:8720 inside the
# container (set [daemon] listen and allow_remote to reach it from outside, with the admin token).
# `docker run IMAGE sync` runs one pass instead.
CMD ["run"]
