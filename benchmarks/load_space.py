"""Load test of the demo: N concurrent gradio_client callers send M requests to `/segment`.

Prints p50/p95 latency, throughput, failures, and the server's resident memory (RSS) before and after the load.
Without --url it starts the demo in a child process (so that its RSS is the server's alone) and stops it at the end.

    python benchmarks/load_space.py --model path/to/model --callers 4 --requests 40
    python benchmarks/load_space.py --url http://127.0.0.1:7860/ --pid 12345 --callers 8 --requests 200
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from carseg_hf.number_ranges import whole_number_type  # noqa: E402
from carseg_hf.sizes import height_width_type  # noqa: E402

SERVER_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(int(sys.argv[4]))
    from carseg_hf.cpu_runtime import retain_freed_memory
    from carseg_hf.demo.app import build_demo
    retain_freed_memory()  # as space/app.py and carseg demo do
    model = sys.argv[1] or None
    demo = build_demo(model, device=sys.argv[2], concurrency_limit=int(sys.argv[5]))
    demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[3]), quiet=True)
    """
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; counts below 1 are usage errors."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an already running demo; default: start one in a child process")
    parser.add_argument("--pid", type=int, help="process id of the server at --url, to read its RSS")
    parser.add_argument("--model", default=None, help="model folder or Hub id for the started server")
    parser.add_argument("--device", default="auto", help="device of the started server")
    parser.add_argument(
        "--server-threads", type=whole_number_type(1), default=1, help="torch threads of the started server"
    )
    parser.add_argument(
        "--concurrency", type=whole_number_type(1), default=2, help="queue concurrency limit of the started server"
    )
    parser.add_argument("--callers", type=whole_number_type(1), default=4, help="concurrent gradio_client callers (N)")
    parser.add_argument(
        "--requests", type=whole_number_type(1), default=40, help="requests in all (M), spread over the callers"
    )
    parser.add_argument("--image", help="image to send; default: a synthetic JPEG of --size")
    parser.add_argument(
        "--size", type=height_width_type(), default="320x480", help="HEIGHTxWIDTH of the synthetic image"
    )
    parser.add_argument("--mask", help="optional ground-truth mask to send with every request")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--tta", action="store_true", help="hflip test-time augmentation")
    parser.add_argument("--resolution", choices=("processor", "native"), default="processor")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    return parser.parse_args(argv)


def rss_mib(pid: int | None) -> str:
    """Resident memory of a process, from /proc (Linux)."""
    if pid is None:
        return "n/a"
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return f"{int(line.split()[1]) / 1024:.1f} MiB"
    except OSError:
        pass
    return "n/a"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-c", SERVER_SCRIPT, args.model or "", args.device, str(port)]
    command += [str(args.server_threads), str(args.concurrency)]
    server = subprocess.Popen(command)
    deadline = time.monotonic() + args.startup_timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the demo server exited with code {server.returncode} before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"the demo server did not listen on port {port} within {args.startup_timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from gradio_client import Client, handle_file

    workdir = Path(tempfile.mkdtemp(prefix="carseg-load-"))
    image = args.image
    if image is None:
        height, width = args.size
        pixels = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
        image = str(workdir / "load.jpg")
        Image.fromarray(pixels).save(image, quality=90)

    server, url, pid = None, args.url, args.pid
    if url is None:
        server, url = start_server(args)
        pid = server.pid
    try:
        clients = [Client(url, verbose=False) for _ in range(args.callers)]
        inputs = (handle_file(image), handle_file(args.mask) if args.mask else None)
        settings = (args.threshold, args.tta, args.resolution)
        clients[0].predict(*inputs, *settings, api_name="/segment")  # warm-up, not timed
        rss_before = rss_mib(pid)

        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        counter = iter(range(args.requests))

        def caller(client: Client) -> None:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                start = time.perf_counter()
                try:
                    client.predict(*inputs, *settings, api_name="/segment")
                except Exception as error:  # noqa: BLE001 - every failure is counted and reported
                    with lock:
                        failures.append(f"{type(error).__name__}: {error}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.callers) as pool:
            list(pool.map(caller, clients))
        wall = time.perf_counter() - start
        rss_after = rss_mib(pid)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)

    print(f"url: {url}  image: {os.path.basename(image)}  resolution: {args.resolution}  tta: {args.tta}")
    print(f"callers: {args.callers}  requests: {args.requests}  wall: {wall:.2f} s  {len(latencies) / wall:.2f} req/s")
    if latencies:
        p50, p95 = np.percentile(np.asarray(latencies) * 1000, [50, 95])
        print(f"latency p50: {p50:.0f} ms  p95: {p95:.0f} ms  max: {max(latencies) * 1000:.0f} ms")
    print(f"failures: {len(failures)}" + (f"  first: {failures[0]}" if failures else ""))
    print(f"server RSS before: {rss_before}  after: {rss_after}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
