# imgd in a container: one image for every role (serve, api, worker, migrate).
#
#   docker build -t imgd .
#   docker run -p 8080:8080 -v imgd-data:/data imgd            # embedded: SQLite + files in /data
#   docker compose up                                          # scale-out: see docker-compose.yml
#
# The build stage compiles the cgo layer against Debian 12's libvips 8.14,
# the runtime stage has the same Debian release's libvips, so the shared
# libraries the binary was linked against are the ones it finds.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvips-dev libjpeg62-turbo-dev liblcms2-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# GOTOOLCHAIN=local: build with the image's Go, never download another.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 GOTOOLCHAIN=local go build -trimpath -ldflags='-s -w' -o /out/imgd ./cmd/imgd

FROM debian:bookworm-slim
# libvips42 brings its loaders (and the optional modules for HEIF, JPEG XL,
# … that imgd loads when a format needs them); libjpeg and lcms2 are linked
# directly by imgd's own C code. curl serves the health check only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvips42 libjpeg62-turbo liblcms2-2 libglib2.0-0 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin imgd \
 && mkdir -p /data && chown imgd:imgd /data
COPY --from=build /out/imgd /usr/local/bin/imgd
# Numeric, so that a runtime which must refuse root (Kubernetes'
# runAsNonRoot) can tell without the image's /etc/passwd; 10001 is imgd.
USER 10001:10001
# Every role listens on IMGD_ADDR: the API (serve, api) or /healthz,
# /readyz and /metrics (worker).
ENV IMGD_ADDR=0.0.0.0:8080 \
    IMGD_DATA_DIR=/data \
    IMGD_LOG_FORMAT=json
VOLUME /data
EXPOSE 8080
# /healthz: the process is alive and serving; /readyz (database, blob
# store) is for load balancers, which should stop sending work while a
# dependency is down without the container being restarted for it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["imgd"]
CMD ["serve"]
