"""API-call and throughput benchmark: the real pipeline against the emulator (bench/README.md).

    python bench/run_bench.py [--quick|--full] [--only shapes,live,replicas,store,latency]
                                              # make bench: every row, then the summary
    python bench/run_bench.py --shapes        # workload shapes vs their lower bound only
    python bench/run_bench.py --live [--quick] [--duration 60] [--rates 5,20,100] [--windows 0,2,5,10]
    python bench/run_bench.py --soak [--quick] [--soak-n 100000] [--soak-step 10000]
    python bench/run_bench.py --scenario people|naive|rename|all   # the original scenarios

Each mode prints markdown tables and writes them to bench/results/<mode>.md (+ .json).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from harness import HAS_WINDOW, MAX_IN_FLIGHT, REQUESTS_PER_SECOND, write_report  # noqa: E402

from connector import logs  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "latest.json"


def settings_line(latency_ms: int) -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"emulator latency {latency_ms} ms a call; Python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load average {load}; "
            f"sqs.batch_window_seconds {'supported' if HAS_WINDOW else 'not in this connector yet'}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--live", action="store_true", help="producer at fixed rates, runner in service mode")
    mode.add_argument("--soak", action="store_true", help="a long run: RSS, state-store bytes, messages/s")
    mode.add_argument("--import", dest="import_", action="store_true",
                      help="connector import of an archive: msgs/s, calls/1k, RSS (100,000; --quick 10,000)")
    mode.add_argument("--scenario", choices=["people", "naive", "rename", "all"], help="the original scenarios")
    mode.add_argument("--shapes", action="store_true", help="the workload shapes only")
    ap.add_argument("--quick", action="store_true", help="shorter runs: 15 s live rows, a 10,000-message soak, "
                    "smaller backlogs (make bench: about 5 minutes)")
    ap.add_argument("--full", action="store_true", help="make bench at the issue's sizes: 60 s live rows, "
                    "a 100,000-message backlog at each latency, three replicas without turns for comparison")
    ap.add_argument("--only", default="", help="make bench: some of shapes,live,replicas,store,latency")
    ap.add_argument("--latency-ms", type=int, default=None,
                    help="latency the emulator adds to every API call (live 100, otherwise 20)")
    ap.add_argument("--seed", type=int, default=7)
    live = ap.add_argument_group("live mode")
    live.add_argument("--duration", type=float, default=None, help="seconds the producer publishes (60; --quick 15)")
    live.add_argument("--rates", default="5,20,100", help="messages a second, comma-separated")
    live.add_argument("--windows", default="0,2,5,10", help="sqs.batch_window_seconds values, comma-separated")
    live.add_argument("--max-lags", default="", help="sqs.max_lag_seconds values, comma-separated: a row per "
                      "rate and value, after the window rows")
    live.add_argument("--wait-seconds", type=int, default=20, help="sqs.wait_seconds for the live runner (20)")
    soak = ap.add_argument_group("soak mode")
    soak.add_argument("--soak-n", type=int, default=None, help="messages in the long run (100,000; --quick 10,000)")
    soak.add_argument("--soak-step", type=int, default=None, help="report every N messages (10,000; --quick 1,000)")
    old = ap.add_argument_group("original scenarios (--batch-messages also applies to --live)")
    old.add_argument("--n", type=int, default=10_000, help="person messages for the people scenario")
    old.add_argument("--naive-n", type=int, default=1_500, help="person messages for the naive baseline")
    old.add_argument("--members", type=int, default=1_000, help="members in the rename scenario")
    old.add_argument("--batch-messages", type=int, default=None,
                     help="sqs.batch_messages for the pipeline (default: the connector's default)")
    old.add_argument("--out", type=Path, default=RESULTS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    os.environ.pop("CURL_CA_BUNDLE", None)
    logs.configure(json_logs=True, level=logging.ERROR)   # one log line per message would dominate
    started = time.perf_counter()
    if args.scenario:
        return run_original(args)
    if args.live:
        from live import run_live

        latency = 100 if args.latency_ms is None else args.latency_ms
        duration = args.duration or (15.0 if args.quick else 60.0)
        rates = [float(x) for x in args.rates.split(",") if x]
        windows = [float(x) for x in args.windows.split(",") if x]
        print(f"bench --live: {settings_line(latency)}", flush=True)
        md, data = run_live(latency, duration, rates, windows, args.seed, args.wait_seconds, args.batch_messages,
                            tuple(float(x) for x in args.max_lags.split(",") if x))
        mode = "live"
    elif args.import_ or args.soak:
        # Both stream --soak-n messages and report a row every --soak-step (import: from an archive).
        if args.import_:
            from import_bench import run_import_bench as run_stream

            mode = "import"
        else:
            from soak import run_soak as run_stream

            mode = "soak"
        latency = 20 if args.latency_ms is None else args.latency_ms
        n = args.soak_n or (10_000 if args.quick else 100_000)
        step = args.soak_step or (1_000 if args.quick else 10_000)
        print(f"bench --{mode}: {settings_line(latency)}", flush=True)
        md, data = run_stream(latency, n, step, args.seed)
    elif args.shapes:
        from shapes import run_shapes

        latency = 20 if args.latency_ms is None else args.latency_ms
        print(f"bench (workload shapes): {settings_line(latency)}", flush=True)
        md, data = run_shapes(latency, args.seed)
        mode = "shapes"
    else:
        from everything import run_all

        latency = 20 if args.latency_ms is None else args.latency_ms
        print(f"bench (everything: shapes at 20 ms, live and replicas at 100 ms, latency at 20/100/300 ms): "
              f"{settings_line(latency)}", flush=True)
        md, data = run_all(args)
        mode = "bench"
    total = time.perf_counter() - started
    md = f"# bench {mode}: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n{settings_line(latency)}; total {total:.0f} s\n\n{md}"
    print("\n" + md)
    path = write_report(mode, md, {"settings": {"latency_ms": latency, "python": platform.python_version(),
                                                "cpus": os.cpu_count(), "has_window": HAS_WINDOW},
                                   "total_seconds": round(total, 1), **data})
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


def run_original(args: argparse.Namespace) -> int:
    from legacy import run_legacy

    from connector.config import SqsConfig

    latency = 20 if args.latency_ms is None else args.latency_ms
    args.latency_ms = latency
    print(f"bench: latency {latency} ms per API call (emulator over HTTPS, fresh org per scenario); "
          f"connector limiter at {REQUESTS_PER_SECOND} req/s and max_in_flight {MAX_IN_FLIGHT}, "
          f"so the limiter is not what is measured; sqs.wait_seconds 0, sqs.batch_messages "
          f"{args.batch_messages or 'default (' + str(SqsConfig.model_fields['batch_messages'].default) + ')'}; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    started = time.perf_counter()
    results: dict[str, Any] = run_legacy(args)
    total = time.perf_counter() - started
    print(f"\ntotal {total:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {"latency_ms": latency, "batch_messages": args.batch_messages, "n": args.n,
                     "naive_n": args.naive_n, "members": args.members, "seed": args.seed,
                     "requests_per_second": REQUESTS_PER_SECOND, "max_in_flight": MAX_IN_FLIGHT,
                     "cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results, "total_seconds": round(total, 1),
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
