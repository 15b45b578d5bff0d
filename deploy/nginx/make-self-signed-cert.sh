#!/usr/bin/env bash
# A self-signed certificate for trying the compose stack locally; use a real one in production.
set -euo pipefail
dir="$(dirname "$0")/certs"
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=${1:-localhost}" \
  -keyout "$dir/licsrv.key" -out "$dir/licsrv.crt"
echo "wrote $dir/licsrv.crt and $dir/licsrv.key"
