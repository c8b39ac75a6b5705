"""Wall time of `hmgdm --help` against a bare `python -c pass`, and against importing torch, in the same run.

The command line builds its parser without torch or torch-geometric (each subcommand imports what it needs
when it runs), so `hmgdm --help` should cost little more than starting Python. Importing torch and
torch_geometric, what the parser used to do, is timed as the named old-cost reference.

    OMP_NUM_THREADS=1 python benchmarks/cli_startup.py [--repeats 7] [--quick]

Prints a table and one JSON line. Each command runs in a fresh process; medians of ``--repeats`` runs.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time


def median_s(command: list[str], repeats: int) -> float:
    subprocess.run(command, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs per command (median reported)")
    parser.add_argument("--quick", action="store_true", help="3 repeats (smoke run)")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    hmgdm = shutil.which("hmgdm") or sys.exit("the hmgdm console script is not installed")
    rows = {
        "baseline: python -c pass": median_s([sys.executable, "-c", "pass"], repeats),
        "hmgdm --help": median_s([hmgdm, "--help"], repeats),
        "hmgdm pretrain --help": median_s([hmgdm, "pretrain", "--help"], repeats),
        "reference: import torch, torch_geometric": median_s(
            [sys.executable, "-c", "import torch, torch_geometric"], repeats
        ),
    }
    base = rows["baseline: python -c pass"]
    print(f"median of {repeats} fresh processes each (machine shared: absolute times are noisy)")
    print(f"{'command':<42} {'median s':>9} {'vs python':>10}")
    for command, seconds in rows.items():
        print(f"{command:<42} {seconds:>9.3f} {seconds / base:>9.1f}x")
    print(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "repeats": repeats,
                "median_s": {k: round(v, 4) for k, v in rows.items()},
                "help_over_python": round(rows["hmgdm --help"] / base, 2),
                "help_under_1s": rows["hmgdm --help"] < 1.0,
            }
        )
    )


if __name__ == "__main__":
    main()
