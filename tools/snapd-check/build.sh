#!/usr/bin/env bash
# Builds snapd-check against Debian's packaged snapd source, offline, in GOPATH mode.
# Needs: golang-go golang-github-snapcore-snapd-dev golang-golang-x-crypto-dev
#        golang-gopkg-yaml.v2-dev golang-gopkg-tomb.v2-dev (see .ci/apt-packages).
# Usage: build.sh OUTPUT
set -euo pipefail
out=${1:?usage: build.sh OUTPUT}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# GOPATH mode needs the package inside a GOPATH; snapd's source stays where Debian put it.
mkdir -p "$work/src/snapd-check"
cp "$here"/*.go "$work/src/snapd-check/"
cd "$work/src/snapd-check"
GO111MODULE=off GOPATH="$work:/usr/share/gocode" CGO_ENABLED=0 GOFLAGS= GOCACHE="${GOCACHE:-$work/cache}" \
  go build -o "$out" .
