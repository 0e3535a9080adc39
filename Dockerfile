# The media worker for Fly.io (fly.toml builds this). Two stages: build with the Rust
# toolchain, run on a slim Debian with only the binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p media-worker && cp target/release/media-worker /media-worker

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /media-worker /usr/local/bin/media-worker
USER nobody
ENV PORT=8080
EXPOSE 8080
# SIGTERM starts the drain; fly.toml's kill_timeout is longer than DRAIN_SECONDS.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/media-worker"]
