#!/bin/sh
# Start coturn with its shared secret read from a file, so that the secret never appears on a
# command line (ps, /proc/PID/cmdline) nor in the repository.
#   TURN_CONFIG        the config without the secret (default /etc/coturn/turnserver.conf)
#   TURN_SECRET_FILE   the secret's file, first line (default /run/secrets/turn_secret)
#   TURN_RUNTIME_DIR   where the private copy with the secret goes (default /tmp)
#   TURN_TLS_CERT      TURN over TLS: the certificate (PEM, may hold the chain), e.g. the classroom
#   TURN_TLS_KEY       server's own tls_cert/tls_key or <data>/tls/server.crt + server.key; both or
#                      neither. Neither: no-tls (TURN over UDP and TCP only).
# Further arguments go to turnserver as they are (never put the secret there).
set -eu
conf="${TURN_CONFIG:-/etc/coturn/turnserver.conf}"
secret_file="${TURN_SECRET_FILE:-/run/secrets/turn_secret}"
dir="${TURN_RUNTIME_DIR:-/tmp}"
if [ ! -r "$secret_file" ]; then
  echo "coturn: cannot read the TURN secret file $secret_file" >&2
  exit 1
fi
secret="$(head -n 1 "$secret_file" | tr -d '\r\n')"
if [ -z "$secret" ]; then
  echo "coturn: the TURN secret file $secret_file is empty" >&2
  exit 1
fi
cert="${TURN_TLS_CERT:-}"
key="${TURN_TLS_KEY:-}"
if [ -n "$cert" ] || [ -n "$key" ]; then
  if [ -z "$cert" ] || [ -z "$key" ]; then
    echo "coturn: TURN_TLS_CERT and TURN_TLS_KEY go together (TURN over TLS needs both)" >&2
    exit 1
  fi
  for f in "$cert" "$key"; do
    if [ ! -r "$f" ]; then
      echo "coturn: cannot read the TLS file $f" >&2
      exit 1
    fi
  done
  tls="$(printf 'cert=%s\npkey=%s' "$cert" "$key")"
else
  tls="no-tls"
fi
umask 077
runtime="$dir/turnserver-runtime.conf"
{ cat "$conf"; printf '%s\nstatic-auth-secret=%s\n' "$tls" "$secret"; } > "$runtime"
exec turnserver -c "$runtime" "$@"
