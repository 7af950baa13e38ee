# syntax=docker/dockerfile:1
# MCMP in a container: a build stage (the Rust toolchain) and a small
# runtime stage (Debian slim, the binary, a non-root user, the data dir a
# volume). Build: docker build -t mcmp .   Run: deploy/README.md "Running
# in a container" (io_uring and locked memory):
#   docker run --security-opt seccomp=/etc/docker/mcmp-seccomp.json \
#     --ulimit memlock=-1:-1 -e MCMP_SHARDS=4 --cpuset-cpus 0-3 \
#     -p 8080:8080 -v mcmp-data:/var/lib/mcmp -e MCMP_ADMIN_TOKEN=… mcmp
# glommio does all I/O through io_uring: Docker's default seccomp profile
# blocks io_uring_setup/enter/register (the profile above allows exactly
# those), and each shard locks about 1 MiB of I/O memory (RLIMIT_MEMLOCK).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mcmp-api --bin mcmp \
 && strip target/release/mcmp

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/mcmp --shell /usr/sbin/nologin mcmp \
 && mkdir -p /var/lib/mcmp /etc/mcmp \
 && chown mcmp:mcmp /var/lib/mcmp
COPY --from=build /src/target/release/mcmp /usr/local/bin/mcmp
COPY deploy/mcmp.toml /etc/mcmp/mcmp.toml
# The example config listens on loopback: a container listens on every
# interface (the environment overrides the file).
ENV MCMP_LISTEN=0.0.0.0:8080 \
    MCMP_DATA_DIR=/var/lib/mcmp \
    MCMP_CONFIG=/etc/mcmp/mcmp.toml
USER mcmp
EXPOSE 8080
VOLUME ["/var/lib/mcmp"]
# SIGTERM drains (finish requests, flush the WAL) within shutdown-grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mcmp"]
CMD ["serve"]
