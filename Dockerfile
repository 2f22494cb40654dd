# syntax=docker/dockerfile:1
#
# Production image of the mailshift worker (./worker).
#   docker build -t mailshift-worker .
# The worker reads its settings from the environment (TEMPORAL_ADDRESS,
# TEMPORAL_NAMESPACE, MAILSHIFT_TASK_QUEUE, MAILSHIFT_CONFIG, ...); see
# docker-compose.yml for a complete stack. Prometheus metrics: set
# MAILSHIFT_METRICS_ADDR=:9464 to serve them beyond the container's loopback.

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS=-trimpath \
    GOTOOLCHAIN=local
# Dependencies first, so that source changes do not invalidate this layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -ldflags="-s -w" -o /out/mailshift-worker ./worker

# distroless/static: no shell, no package manager; contains CA certificates
# and tzdata, runs as the unprivileged user "nonroot" (uid/gid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mailshift-worker /usr/local/bin/mailshift-worker
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/mailshift-worker"]
