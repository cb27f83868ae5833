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
if [ ! -f "$DIST/CURRENT" ] && ! "$PYTHON" -c "import azinfer.serve" >/dev/null 2>&1; then
  # A new share gets the wheel only after the ARM deployment that made this app returns, and that
  # deployment waits for this replica's startup probe: answer /health (and 503 on /ready) meanwhile.
  "$PYTHON" -c '
import http.server, os, sys, threading, time
dist, wait = sys.argv[1], float(os.environ.get("AZINFER_WHEEL_WAIT_SECONDS", "3600"))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/health"
        self.send_response(200 if ok else 503); self.end_headers()
        self.wfile.write(b"{\"status\": \"waiting for azinfer deploy\"}" if ok else b"")
    def log_message(self, *args): pass
if wait > 0:
    server = http.server.ThreadingHTTPServer(("", int(os.environ["AZINFER_PORT"])), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"azinfer: waiting up to {wait:g} s for azinfer deploy to put the wheel in {dist}", flush=True)
deadline, said = time.monotonic() + wait, time.monotonic()
while not os.path.isfile(os.path.join(dist, "CURRENT")):
    if time.monotonic() >= deadline:
        sys.exit(1)
    if time.monotonic() - said >= 60:
        print(f"azinfer: still waiting for the wheel in {dist}", flush=True); said = time.monotonic()
    time.sleep(1)
print("azinfer: the wheel arrived", flush=True)
' "$DIST" || { echo "azinfer: error: azinfer is neither on the share ($DIST) nor in the image: run 'azinfer deploy'" >&2; exit 1; }
fi
if [ -f "$DIST/CURRENT" ]; then
  WHEEL="$DIST/$(tr -d '[:space:]/' < "$DIST/CURRENT")"
  echo "azinfer: starting from $WHEEL"
  exec env PYTHONPATH="$WHEEL" "$PYTHON" -m azinfer.serve.bootstrap "$WHEEL"
fi
echo "azinfer: serving with the image's azinfer, the model under $MOUNT, port $AZINFER_PORT"
exec "$PYTHON" -m azinfer.serve
