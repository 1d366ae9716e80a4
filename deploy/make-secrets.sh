#!/bin/sh
# Make the secret files deploy/compose.yaml reads (once; existing files are kept):
#   deploy/secrets/turn_secret             coturn's shared secret, read by coturn and the classroom
#                                          server (both run as uid 10001 in compose)
#   deploy/secrets/token_secret            the join-token secret all classroom nodes share (10001)
#   deploy/secrets/db_password             PostgreSQL's password for the classroom nodes (10001)
#   deploy/secrets/postgres_password       the same password for the postgres container (uid 999)
#   deploy/secrets/grafana_admin_password  Grafana's admin password (Grafana runs as uid 472)
# Each is mode 0400 and owned by the uid of the container that reads it (compose bind-mounts
# secret files with their host owner and mode). Run as root, or as the user docker runs with.
# SECRETS_DIR=DIR puts them elsewhere.
set -eu
dir="${SECRETS_DIR:-$(cd "$(dirname "$0")" && pwd)/secrets}"
umask 077
mkdir -p "$dir"
make_secret() {  # make_secret NAME UID [COPY_OF]
  f="$dir/$1"
  if [ -s "$f" ]; then
    echo "kept $f"
  elif [ -n "${3:-}" ]; then
    cat "$dir/$3" > "$f"   # one value, two files: compose secrets keep the host file's owner
    echo "made $f (a copy of $3)"
  else
    # 32 random bytes, hex: no character that a config file or shell would treat specially
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$f"
    echo >> "$f"
    echo "made $f"
  fi
  chmod 0400 "$f"
  if [ "$(id -u)" -eq 0 ]; then chown "$2:$2" "$f"; fi
}
make_secret turn_secret 10001
make_secret token_secret 10001
make_secret db_password 10001
make_secret postgres_password 999 db_password
make_secret grafana_admin_password 472
echo "Grafana: http://127.0.0.1:3000 (user admin, password in $dir/grafana_admin_password)"
