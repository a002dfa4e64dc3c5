"""`carseg demo`: serve the Gradio demo (the Space) locally."""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_PORT = 7860


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `carseg demo`."""
    parser = subparsers.add_parser(
        "demo",
        help="serve the interactive Gradio demo (the Space) on this machine",
        description="Serve the Gradio demo. The model comes from --model, else $CARSEG_MODEL, else the bundled one.",
    )
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: $CARSEG_MODEL or bundled)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1; 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GRADIO_SERVER_PORT", DEFAULT_PORT)),
        help=f"port (default: $GRADIO_SERVER_PORT or {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--share",
        choices=("no", "yes"),
        default="no",
        help="create a public gradio.live link (default: no; needs internet access)",
    )
    parser.add_argument("--concurrency", type=int, default=2, help="requests processed at once (default: 2)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Build the demo and serve it until interrupted."""
    if args.concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, got {args.concurrency}")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must lie in 1..65535, got {args.port}")
    from ..cpu_runtime import retain_freed_memory
    from ..demo import DemoDependencyError

    try:
        from ..demo.app import build_demo
    except DemoDependencyError as error:
        print(f"carseg demo: error: {error}", file=sys.stderr)
        return 2

    retain_freed_memory()  # a server process: reuse freed activation memory instead of faulting in fresh pages
    demo = build_demo(model=args.model, device=args.device, concurrency_limit=args.concurrency)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share == "yes")  # build_demo's upload limit
    return 0
