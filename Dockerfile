# The PRIMA Partner API image: a release build of `prima` on a slim Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin prima

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/prima /usr/local/bin/prima
USER nobody
EXPOSE 8000
ENV PRIMA_BIND=0.0.0.0:8000
ENTRYPOINT ["prima"]
CMD ["serve"]
