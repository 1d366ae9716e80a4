#!/bin/sh
# Print the two Kubernetes objects that are made from files rather than kept in the repository:
#   Secret classroom-secrets  from deploy/secrets/ (made by deploy/make-secrets.sh): token_secret,
#                             db_password, turn_secret — never in the repository, never inline
#   ConfigMap coturn-config   from deploy/coturn/turnserver.conf and entrypoint.sh, as they are
# Apply them with the rest (deploy/README.md):
#   sh deploy/make-secrets.sh && sh deploy/kubernetes/make-objects.sh | kubectl apply -f -
# SECRETS_DIR=DIR reads the secret files from elsewhere. Needs only sh, sed and base64.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
secrets="${SECRETS_DIR:-$here/../secrets}"
coturn="$here/../coturn"
for f in token_secret db_password turn_secret; do
  if [ ! -s "$secrets/$f" ]; then
    echo "make-objects: $secrets/$f is missing or empty (run deploy/make-secrets.sh first)" >&2
    exit 1
  fi
done
cat <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: classroom-secrets
  namespace: classroom
  labels:
    app.kubernetes.io/part-of: classroom
type: Opaque
data:
YAML
for f in token_secret db_password turn_secret; do
  printf '  %s: %s\n' "$f" "$(base64 < "$secrets/$f" | tr -d '\n')"
done
cat <<YAML
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: coturn-config
  namespace: classroom
  labels:
    app.kubernetes.io/name: coturn
    app.kubernetes.io/part-of: classroom
data:
YAML
for f in turnserver.conf entrypoint.sh; do
  printf '  %s: |\n' "$f"
  sed 's/^/    /' "$coturn/$f"
done
