"""``python -m bench``: every engine on every standard model, printed as one Markdown table.

    python -m bench                       # the full run (docs/PERFORMANCE.md), < 15 min cached
    python -m bench --quick               # tiny models and sizes: a smoke run of seconds
    python -m bench --models M1,M3 --engines pyastore,xgboost-inplace,onnxruntime
    python -m bench --no-cold-start --json out.json
    python -m bench --prepare-only        # train, export, convert and compile; measure nothing

Progress goes to stderr; the table to stdout; the full results (every timing, the machine,
the load average, the commit) to ``<cache>/<profile>/results.json`` or ``--json``.
Models and converted/compiled files are cached under ``bench/.cache/`` (``--cache``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness  # noqa: E402
from bench.contenders import ENGINES  # noqa: E402
from bench.models import DEFAULT_CACHE, FULL, MODEL_KEYS, QUICK  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny models and sizes (smoke test)")
    parser.add_argument("--models", default=",".join(MODEL_KEYS),
                        help=f"comma-separated subset of {','.join(MODEL_KEYS)}")
    parser.add_argument("--engines", default=None,
                        help="comma-separated subset of " + ",".join(e.key for e in ENGINES))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache folder")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start runs")
    parser.add_argument("--prepare-only", action="store_true",
                        help="build the models and every engine's files (convert, compile), "
                             "measure nothing")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    if args.prepare_only:
        harness.prepare_all(profile, args.cache, models, log)
        return 0
    if not args.quick and os.getloadavg()[0] > 1.2:
        log(f"[bench] warning: 1-minute load average {os.getloadavg()[0]:.2f}: other work is "
            "running, numbers will be noisy")
    engines = tuple(e.strip() for e in args.engines.split(",")) if args.engines else None
    results = harness.run(profile, args.cache, models, engines, cold=not args.no_cold_start,
                          log=log)
    out = args.json or Path(args.cache) / profile.name / "results.json"
    harness.write_results(results, out)
    print(harness.render_summary(results))
    print(harness.render_markdown(results), end="")
    log(f"[bench] results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
