#!/usr/bin/env bash
# Daily PostgreSQL backup of licsrv: a custom-format pg_dump, written under a temporary name and renamed when
# complete, and dumps older than KEEP_DAYS (default 30) removed. Redis holds only live sessions: no backup.
set -euo pipefail

database_url="${1:-${LICSRV_DATABASE_URL:-}}"
backup_dir="${BACKUP_DIR:-/var/backups/licsrv}"
keep_days="${KEEP_DAYS:-30}"

if [ -z "$database_url" ]; then
  echo "backup.sh: set LICSRV_DATABASE_URL or pass the database URL as the first argument" >&2
  exit 2
fi
mkdir -p "$backup_dir"
name="licsrv-$(date -u +%Y%m%d-%H%M%S).dump"
partial="$backup_dir/.$name.partial"
trap 'rm -f "$partial"' EXIT

if ! pg_dump --format=custom --no-owner --file="$partial" "$database_url"; then
  echo "backup.sh: pg_dump failed; no backup written" >&2
  exit 1
fi
mv "$partial" "$backup_dir/$name"
find "$backup_dir" -maxdepth 1 -type f -name 'licsrv-*.dump' -mtime +"$((keep_days - 1))" -delete
echo "backup.sh: wrote $backup_dir/$name"
