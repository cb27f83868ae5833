# azinfer: start command of the inference container app (run as /bin/bash -c "<this script>").
# The AI Toolkit's start command reinstalled torch and friends with pip on every
# replica start. This one runs azinfer from the image when it is there;
# otherwise it installs azinfer[serve] once into a virtual environment on the
# share, keyed by azinfer and Python versions, and reuses it on later starts.
# The environment sees the image's site-packages, so the image's torch is kept.
set -euo pipefail
AZINFER_VERSION="${AZINFER_VERSION:-__AZINFER_VERSION__}"
MOUNT="${AZINFER_MOUNT:-/mount}"
PYTHON="${AZINFER_PYTHON:-python3}"
export AZINFER_MOUNT="$MOUNT" AZINFER_PORT="${AZINFER_PORT:-7860}" HF_HUB_OFFLINE=1
if ! "$PYTHON" -c "import azinfer.serve.api" >/dev/null 2>&1; then
  PY_TAG="$("$PYTHON" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')"
  VENV="$MOUNT/.azinfer/venv-$AZINFER_VERSION-$PY_TAG"
  if [ ! -f "$VENV/.complete" ]; then
    echo "azinfer: installing azinfer[serve]==$AZINFER_VERSION into $VENV (once)"
    BUILD="$VENV.building.$$"
    "$PYTHON" -m venv --system-site-packages "$BUILD"
    "$BUILD/bin/python" -m pip install --no-cache-dir "${AZINFER_PIP_SPEC:-azinfer[serve]==$AZINFER_VERSION}"
    touch "$BUILD/.complete"
    # Another replica may have finished first; keep its environment then.
    mv -T "$BUILD" "$VENV" 2>/dev/null || rm -rf "$BUILD"
  fi
  PYTHON="$VENV/bin/python"
fi
echo "azinfer: serving the model under $MOUNT on port $AZINFER_PORT"
exec "$PYTHON" -m azinfer.serve
