"""Peak memory of ``azinfer deploy`` uploading one large file, against the ARM emulator (its own process).

Run: python benchmarks/deploy_rss.py [SIZE_MIB]   (default 512)
A project whose start command is the user's mirrors its folder to the share; one
file of SIZE_MIB (sparse: it costs no disk) is added and ``azinfer deploy --no-wait``
uploads it. Printed: the deploy process's peak RSS, beside the baseline of the same
run: the same deploy of a 1-byte change (what the process needs without the file).
Goal: the large file adds a few MiB (ranges in flight), not its size.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from azure_support import make_project, peak_rss_mib  # noqa: E402

RG = "rg-rss"
SUB = "00000000-0000-0000-0000-0000000000aa"


def main() -> None:
    size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / "emulator.env"
        emulator = subprocess.Popen([sys.executable, "-m", "azinfer.local.emulator", "--subscription", SUB,
                                     "--resource-group", RG, "--location", "westus3", "--env-file", str(env_file)],
                                    cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not env_file.exists():
                if time.monotonic() > deadline or emulator.poll() is not None:
                    raise RuntimeError("the emulator did not start")
                time.sleep(0.1)
            env = {}
            for line in env_file.read_text().splitlines():
                name, _, value = line.removeprefix("export ").partition("=")
                env[name] = value.strip("'")
            root = make_project(Path(tmp) / "project", SUB, RG,
                                {"defaultCommands": ["cd /mount/inference", "python3 ./server.py"]})
            (root / "inference").mkdir()
            (root / "inference" / "server.py").write_text("print('serving')\n")
            arm = ["--arm-endpoint", env["AZURE_RESOURCE_MANAGER_ENDPOINT"]]
            peak_rss_mib(["provision", str(root), "--yes", *arm], env, root)
            (root / "inference" / "server.py").write_text("print('serving!')\n")
            baseline = peak_rss_mib(["deploy", str(root), "--yes", "--no-wait", *arm], env, root)
            with (root / "inference" / "big.bin").open("wb") as handle:
                handle.truncate(size_mib << 20)  # sparse
            started = time.monotonic()
            big = peak_rss_mib(["deploy", str(root), "--yes", "--no-wait", *arm], env, root)
            took = time.monotonic() - started
        finally:
            emulator.terminate()
            emulator.wait(30)
    print(f"deploy of a {size_mib} MiB file: peak RSS {big:.0f} MiB ({took:.1f} s); "
          f"baseline (a 1-byte change, same run): {baseline:.0f} MiB; the file added {big - baseline:.0f} MiB")


if __name__ == "__main__":
    main()
