"""Cold-start bench: import time of each handler against a bare boto3 handler, and the layer's zip size.

1. Import time. Every handler module (functions/*/app.py) is imported in a FRESH Python process (the
   venv's interpreter), with PYTHONPATH = layers/iics_monitor/python + the function's folder and the
   environment the template gives (Globals + the function's own variables, placeholder values). The child
   times ``importlib`` of app.py with ``time.perf_counter()`` and prints the delta. The reference is a bare
   handler module that does ``import boto3`` and creates one client at import
   (``boto3.client("s3", region_name="us-east-1")``); the project's handlers create their clients lazily,
   on the first invocation, so that is not in their figure. Runs are interleaved (bare, handler 1, ...,
   bare, handler 1, ...) because the machine is noisy; one discarded warm-up round writes the .pyc files
   first. POWERTOOLS_TRACE_DISABLED=true: the X-Ray daemon is not reachable offline.
2. Layer size. The layer is built by its Makefile target, the one ``sam build`` runs
   (``make -C layers/iics_monitor build-MonitorLayer ARTIFACTS_DIR=<tmp>``): the distributions pinned in
   layers/iics_monitor/python/requirements.txt, installed with ``pip --no-deps`` for python3.13 arm64,
   plus the iics_monitor package; then zipped (deflated). boto3, botocore, s3transfer, python-dateutil and
   six must not be in it: the runtime has them. If make or pip fails (no registry), the same pinned
   distributions are copied from the venv instead.

    python -m bench.cold_start [--repeats 7 --output bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results import RESULTS, merge_results
from iics_monitor_local import template

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"
LAYER_DIR = ROOT / "layers" / "iics_monitor"
LAYER_PYTHON = LAYER_DIR / "python"
REQUIREMENTS = LAYER_PYTHON / "requirements.txt"
LAYER_TARGET = "build-MonitorLayer"  # template.yaml's MonitorLayer (BuildMethod: makefile)
# The python3.13 runtime has boto3 and its dependencies. The layer leaves RUNTIME_SDK to it (distributions,
# then their import names) and ships its own pinned jmespath and urllib3 (layers/iics_monitor/Makefile).
RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "python-dateutil", "six")
# What the Lambda runtime already has (the layer relies on it): its SDK, and botocore's own deps.
RUNTIME_PROVIDED = (*RUNTIME_SDK, "jmespath", "urllib3")
RUNTIME_SDK_MODULES = ("boto3", "botocore", "s3transfer", "dateutil", "six")
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

HANDLERS = ("start_monitor", "check_status", "archive_log", "notify_topic", "notify_slack")
BARE = "bare boto3 (import + s3 client)"
BARE_SOURCE = '''"""A bare handler: boto3 and one client, created at import."""
import boto3

s3 = boto3.client("s3", region_name="us-east-1")


def lambda_handler(event, context):
    return {}
'''

RATIO_TARGET = 1.5
LAYER_TARGET_MIB = 5.0
MIB = 1024 * 1024

# What the bench changes in the template's environment: no X-Ray daemon offline.
BENCH_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}
# The Parameters the bench deploys with besides the defaults: without a Slack secret the template has no
# NotifySlackFunction (Condition HasSlack).
BENCH_PARAMETERS = {"SlackWebhookSecretName": "iics/slack"}

# As in Lambda: a region, no shared config or credentials files.
AWS_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}

CHILD = """
import importlib.util, json, sys, time
path = sys.argv[1]
before = len(sys.modules)
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", path)
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
t1 = time.perf_counter()
assert callable(module.lambda_handler)
print(json.dumps({"import_ms": (t1 - t0) * 1000, "modules": len(sys.modules) - before}))
"""


# --- 1. Import time ------------------------------------------------------------------------------


@dataclass
class ImportResult:
    name: str
    import_ms: list[float] = field(default_factory=list)
    process_ms: list[float] = field(default_factory=list)  # whole child process, interpreter start included
    modules: int = 0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.import_ms)

    @property
    def median_process_ms(self) -> float:
        return statistics.median(self.process_ms)


def _python() -> str:
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def function_env(handler: str | None) -> dict[str, str]:
    """The environment template.yaml gives the function in functions/<handler>/ (Globals, then its own
    variables; the bare handler gets Globals only), the Parameters at their defaults but BENCH_PARAMETERS,
    and each resource named by its logical id."""
    sam = template.load()
    variables = dict(sam["Globals"]["Function"]["Environment"]["Variables"])
    for resource in sam["Resources"].values():
        if resource["Properties"].get("CodeUri") == f"functions/{handler}/":
            variables |= resource["Properties"].get("Environment", {}).get("Variables", {})
    return {name: _deployed_value(value, sam) for name, value in variables.items()} | BENCH_ENV


def _deployed_value(value: Any, sam: dict) -> str:
    if not isinstance(value, dict):
        return str(value)
    ((function, argument),) = value.items()
    if function == "Ref":
        parameter = sam["Parameters"].get(argument)
        if parameter is None:
            return argument  # a resource: its logical id stands for its name
        return str(BENCH_PARAMETERS.get(argument, parameter.get("Default", "")))
    if function == "Fn::If":
        condition, when_true, when_false = argument
        return _deployed_value(when_true if _holds(sam["Conditions"][condition], sam) else when_false, sam)
    if function == "Fn::Join":  # a CommaDelimitedList Parameter, joined back: its value as given
        separator, values = argument
        if isinstance(values, dict):
            return _deployed_value(values, sam)
        return separator.join(_deployed_value(v, sam) for v in values)
    raise ValueError(f"the bench cannot resolve {value!r} in template.yaml's environment")


def _holds(condition: dict, sam: dict) -> bool:
    ((function, argument),) = condition.items()
    if function == "Fn::Equals":
        return _deployed_value(argument[0], sam) == _deployed_value(argument[1], sam)
    if function == "Fn::Not":
        return not _holds(argument[0], sam)
    raise ValueError(f"the bench cannot evaluate the condition {condition!r} in template.yaml")


def child_env(function_dir: Path, handler: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    env |= AWS_ENV | function_env(handler)
    env["PYTHONPATH"] = os.pathsep.join([str(LAYER_PYTHON), str(function_dir)])
    return env


def measure_once(app_py: Path, handler: str | None) -> tuple[float, float, int]:
    """(import ms inside the child, whole process ms, modules imported) for one fresh process."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [_python(), "-c", CHILD, str(app_py)],
        env=child_env(app_py.parent, handler),
        cwd=app_py.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    process_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"importing {app_py} failed:\n{done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["import_ms"], process_ms, out["modules"]


def measure_imports(handlers: Sequence[str] = HANDLERS, repeats: int = 7, warmup: bool = True) -> list[ImportResult]:
    """Interleaved fresh-process runs: bare, handler 1, ..., bare, handler 1, ... (``repeats`` rounds)."""
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        bare_app = Path(tmp) / "bare_boto3" / "app.py"
        bare_app.parent.mkdir()
        bare_app.write_text(BARE_SOURCE)
        targets: list[tuple[str, Path, str | None]] = [(BARE, bare_app, None)]
        targets += [(h, FUNCTIONS / h / "app.py", h) for h in handlers]
        results = {name: ImportResult(name) for name, _, _ in targets}
        for round_ in range((1 if warmup else 0) + repeats):
            for name, app_py, handler in targets:
                import_ms, process_ms, modules = measure_once(app_py, handler)
                if warmup and round_ == 0:
                    continue  # writes the .pyc files; not counted
                results[name].import_ms.append(import_ms)
                results[name].process_ms.append(process_ms)
                results[name].modules = modules
    return list(results.values())


def import_report(results: Sequence[ImportResult]) -> dict[str, Any]:
    bare = next(r for r in results if r.name == BARE)
    rows = {}
    for r in results:
        ratio = r.median_ms / bare.median_ms
        rows[r.name] = {
            "median_import_ms": round(r.median_ms, 1),
            "median_process_ms": round(r.median_process_ms, 1),
            "ratio_to_bare_boto3": round(ratio, 2),
            "modules_imported": r.modules,
            "runs_import_ms": [round(v, 1) for v in r.import_ms],
            "pass": r.name == BARE or ratio <= RATIO_TARGET,
        }
    handlers = [name for name in rows if name != BARE]
    return {
        "method": "fresh process per run, interleaved; perf_counter around importlib of app.py in the child;"
        " one discarded warm-up round (.pyc written); POWERTOOLS_TRACE_DISABLED=true (no X-Ray offline)",
        "python": _python_version(),
        "repeats": len(bare.import_ms),
        "bare_boto3": BARE_SOURCE.split("\n", 1)[1].strip(),
        "target": f"median import <= {RATIO_TARGET}x the bare boto3 handler",
        "handlers": rows,
        "pass": all(rows[h]["pass"] for h in handlers),
    }


def _python_version() -> str:
    done = subprocess.run(  # noqa: S603
        [_python(), "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


# --- 2. Layer size -------------------------------------------------------------------------------


def _requirement_lines(path: Path = REQUIREMENTS) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def make_layer(artifacts: Path, target: str = LAYER_TARGET) -> None:
    """Run a target of the layer's Makefile into ``artifacts`` (which gets ``python/``), as ``sam build`` does."""
    make = shutil.which("make")
    if make is None:
        raise FileNotFoundError("make is not on PATH")
    subprocess.run(  # noqa: S603 - make, our Makefile, our interpreter
        [make, "-s", "-C", str(LAYER_DIR), target, f"ARTIFACTS_DIR={artifacts}", f"PYTHON={_python()}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )


def build_layer_from_venv(artifacts: Path) -> None:
    """Fallback without the registry: the pinned distributions as the venv has them (its Python and
    platform, not python3.13 arm64), then the Makefile's own step for the iics_monitor package."""
    from importlib import metadata

    from packaging.requirements import Requirement

    python_dir = artifacts / "python"
    for line in _requirement_lines():
        dist = metadata.distribution(Requirement(line).name)
        for file in dist.files or ():
            src = Path(dist.locate_file(file))
            if src.is_file() and "__pycache__" not in file.parts and file.parts[0] not in ("..", "bin"):
                dest = python_dir / file
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
    make_layer(artifacts, "layer-package")


def _top_level(name: str) -> str:
    head = name.split("/", 1)[0]
    if head.endswith((".dist-info", ".egg-info")):
        return "(dist-info)"
    return head.removesuffix(".py")


def shipped_distributions(python_dir: Path) -> dict[str, str]:
    """{distribution name: version} of what the layer ships, from its ``*.dist-info`` folders."""
    from importlib import metadata

    dists = (metadata.Distribution.at(path) for path in sorted(python_dir.glob("*.dist-info")))
    return {dist.metadata["Name"]: dist.version for dist in dists}


def zip_layer(layer_root: Path, zip_path: Path) -> dict[str, Any]:
    """Zip ``layer_root`` (which holds ``python/``) and sum sizes per top-level package."""
    per_package: dict[str, dict[str, int]] = {}
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in layer_root.rglob("*") if p.is_file()):
            zf.write(file, file.relative_to(layer_root).as_posix())
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            package = _top_level(info.filename.removeprefix("python/"))
            sizes = per_package.setdefault(package, {"zipped_bytes": 0, "unzipped_bytes": 0})
            sizes["zipped_bytes"] += info.compress_size
            sizes["unzipped_bytes"] += info.file_size
    ordered = dict(sorted(per_package.items(), key=lambda kv: -kv[1]["zipped_bytes"]))
    return {"zip_bytes": zip_path.stat().st_size, "packages": ordered}


def build_layer(artifacts: Path, use_make: bool = True) -> tuple[str, str]:
    """Build the layer into ``artifacts``: (method, note). The Makefile's recipe, or the venv fallback."""
    if use_make:
        try:
            make_layer(artifacts)
            return "make", ""
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = exc.stderr.strip().splitlines()[-1] if getattr(exc, "stderr", None) else type(exc).__name__
            note = f"make {LAYER_TARGET} failed ({detail}); fell back to the venv's packages"
            shutil.rmtree(artifacts, ignore_errors=True)
    else:
        note = "from the venv's installed packages (its Python and platform, not python3.13 arm64)"
    artifacts.mkdir(parents=True, exist_ok=True)
    build_layer_from_venv(artifacts)
    return "venv", note


def measure_layer(use_make: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-layer-") as tmp:
        root = Path(tmp) / "layer"
        method, note = build_layer(root, use_make)
        shipped = shipped_distributions(root / "python")
        sized = zip_layer(root, Path(tmp) / "layer.zip")
    zip_mib = sized["zip_bytes"] / MIB
    sdk_in_layer = sorted(set(sized["packages"]) & set(RUNTIME_SDK_MODULES))
    return {
        "method": method,
        "build": f"make -C layers/iics_monitor {LAYER_TARGET} (the recipe sam build runs: pip install --no-deps"
        " -r python/requirements.txt --platform manylinux2014_aarch64 --python-version 3.13 --implementation cp"
        " --only-binary=:all: --no-compile, + iics_monitor); zip deflated"
        if method == "make"
        else note,
        "note": note,
        "zip_bytes": sized["zip_bytes"],
        "zip_mib": round(zip_mib, 2),
        "target_mib": LAYER_TARGET_MIB,
        "left_to_runtime": list(RUNTIME_SDK),
        "runtime_sdk_in_layer": sdk_in_layer,
        "distributions": shipped,
        "pass": zip_mib <= LAYER_TARGET_MIB and not sdk_in_layer,
        "packages": {
            name: sizes | {"zipped_mib": round(sizes["zipped_bytes"] / MIB, 3)}
            for name, sizes in sized["packages"].items()
        },
    }


# --- Output --------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows]
    return "\n".join(lines)


def format_table(cold: dict[str, Any], layer: dict[str, Any] | None) -> str:
    header = ("measure", "median ms (import)", "median ms (process)", "ratio to bare", "modules", "target")
    rows = []
    for name, r in cold["handlers"].items():
        verdict = "(reference)" if name == BARE else ("PASS" if r["pass"] else "GAP") + f" <= {RATIO_TARGET}x"
        rows.append(
            (
                name,
                f"{r['median_import_ms']:.1f}",
                f"{r['median_process_ms']:.1f}",
                f"{r['ratio_to_bare_boto3']:.2f}x",
                str(r["modules_imported"]),
                verdict,
            )
        )
    if layer is not None:
        verdict = ("PASS" if layer["pass"] else "GAP") + f" <= {LAYER_TARGET_MIB:g} MiB, no boto3/botocore"
        rows.append((f"layer zip ({layer['method']})", f"{layer['zip_mib']:.2f} MiB", "", "", "", verdict))
    return _table(header, rows)


def format_report(cold: dict[str, Any], layer: dict[str, Any] | None, elapsed_s: float) -> str:
    out = [
        f"Python {cold['python']}, {cold['repeats']} interleaved fresh-process runs each; {cold['method']}",
        "",
        format_table(cold, layer),
    ]
    if layer is not None:
        out += ["", "layer: packages (zipped / unzipped MiB):"]
        for name, sizes in layer["packages"].items():
            out.append(f"  {name:<24} {sizes['zipped_mib']:6.2f} / {sizes['unzipped_bytes'] / MIB:6.2f}")
        out.append("layer ships: " + ", ".join(f"{name} {version}" for name, version in layer["distributions"].items()))
        sdk = ", ".join(layer["runtime_sdk_in_layer"]) or "none"
        out.append(f"left to the runtime: {', '.join(layer['left_to_runtime'])} (in the layer: {sdk})")
        if layer["note"]:
            out.append(f"layer note: {layer['note']}")
    out.append(f"{'PASS' if cold['pass'] else 'GAP '} {cold['target']}")
    if layer is not None:
        verdict = "PASS" if layer["pass"] else "GAP "
        out.append(f"{verdict} layer zip <= {LAYER_TARGET_MIB:g} MiB without the runtime's SDK: {layer['zip_mib']} MiB")
    out.append(f"measured in {elapsed_s:.1f} s")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--handlers", nargs="*", default=list(HANDLERS), choices=HANDLERS)
    parser.add_argument(
        "--layer", choices=("make", "venv", "skip"), default="make", help="how to build the layer (make: as sam build)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="results JSON (default: bench/results.json)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cold = import_report(measure_imports(args.handlers, args.repeats))
    layer = None if args.layer == "skip" else measure_layer(use_make=args.layer == "make")
    elapsed = time.perf_counter() - started
    merge_results(args.output, {"cold_start": cold} | ({"layer": layer} if layer is not None else {}))
    print(format_report(cold, layer, elapsed))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
