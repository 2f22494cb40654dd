# syntax=docker/dockerfile:1
#
# Image of the mailshift starter (./starter). docker-compose.yml runs it as
# the codec server (`starter codec-server`) that lets the Temporal Web UI
# show encrypted payloads decrypted; it can also run any other starter
# command (migrate, status, controls) against the stack.
#   docker build -f deploy/starter.Dockerfile -t mailshift-starter .
# The starter embeds a Temporal server for `demo` and `serve`: its first
# build takes about 11-15 minutes on 2 cores.

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS=-trimpath \
    GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -ldflags="-s -w" -o /out/mailshift-starter ./starter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mailshift-starter /usr/local/bin/mailshift-starter
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/mailshift-starter"]
