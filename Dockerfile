# syntax=docker/dockerfile:1

# Build: a static binary (modernc.org/sqlite is pure Go, so no cgo).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /web ./cmd/web

# Run: no shell, no package manager. It stays root because a freshly created
# Fly volume (and most Docker volumes) is owned by root and the database must
# be writable there.
FROM gcr.io/distroless/static-debian12
COPY --from=build /web /web
# The SQLite database lives on a mounted volume; it is created and migrated
# on first start.
ENV BRAID_DB=/data/braid.db \
    BRAID_SECURE_COOKIES=1 \
    PORT=8080
VOLUME /data
EXPOSE 8080
CMD ["/web", "serve"]
