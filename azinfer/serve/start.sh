# azinfer: start command of the inference container app (run as /bin/bash -c "<this script>").
# Installs only from what 'azinfer deploy' put on the share (.azinfer/dist): never
# from a package index for azinfer itself. The first replica installs it once into
# .azinfer/env on the share; other replicas and restarts reuse that (see
# azinfer/serve/bootstrap.py). Without a wheel on the share, an image that has
# azinfer installed serves with it.
set -euo pipefail
MOUNT="${AZINFER_MOUNT:-/mount}"
PYTHON="${AZINFER_PYTHON:-python3}"
DIST="$MOUNT/.azinfer/dist"
export AZINFER_MOUNT="$MOUNT" AZINFER_PORT="${AZINFER_PORT:-7860}" HF_HUB_OFFLINE=1
if [ -f "$DIST/CURRENT" ]; then
  WHEEL="$DIST/$(tr -d '[:space:]/' < "$DIST/CURRENT")"
  echo "azinfer: starting from $WHEEL"
  exec env PYTHONPATH="$WHEEL" "$PYTHON" -m azinfer.serve.bootstrap "$WHEEL"
fi
if "$PYTHON" -c "import azinfer.serve" >/dev/null 2>&1; then
  echo "azinfer: serving with the image's azinfer, the model under $MOUNT, port $AZINFER_PORT"
  exec "$PYTHON" -m azinfer.serve
fi
echo "azinfer: error: azinfer is neither on the share ($DIST) nor in the image: run 'azinfer deploy'" >&2
exit 1
