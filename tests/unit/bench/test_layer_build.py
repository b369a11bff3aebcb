"""The layer's build recipe (layers/iics_monitor/Makefile, the target `sam build` runs): what the layer
ships, how big its zip is, and that the handlers import from it when the runtime gives only boto3's tree.
Each check runs on the recipe run alone and on a real `sam build` (make test's build/sam/, made by the
project's pinned SAM CLI), where the handlers are the built functions the built template names.

The build downloads python3.13 arm64 wheels through pip; the tests skip only when the package registry
cannot be reached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench import cold_start as bench
from iics_monitor_local import template as sam_template
from iics_monitor_local.stack import LocalStack, _registry
from iics_monitor_local.template import TEMPLATE
from tests.conftest import ROOT

# Marker values of the python3.13 arm64 Lambda runtime, for the dependencies the layer's wheels declare.
LAMBDA_MARKERS = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
}
LAYER_MODULES = ("aws_lambda_powertools", "aws_xray_sdk", "wrapt", "jmespath", "typing_extensions", "urllib3")

# Run in a fresh interpreter, without site-packages or .pyc writes (-I -S -B): sys.path is the stdlib,
# then the layer's python/ (as /opt/python), then the "runtime" (as /var/lang/lib/python3.13/site-packages).
# Each handler is imported with its function's folder first on sys.path, as Lambda's task root is.
IMPORT_CHILD = """
import importlib, importlib.util, json, os, pkgutil, sys
layer, runtime, *handlers = sys.argv[1:]
sys.path[:0] = [layer, runtime]
import iics_monitor
for info in pkgutil.walk_packages(iics_monitor.__path__, "iics_monitor."):
    importlib.import_module(info.name)
for index, path in enumerate(handlers):
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(f"handler_{index}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.lambda_handler)
    sys.path.pop(0)
import botocore.client
print(json.dumps({
    "files": {name: module.__file__ for name, module in sys.modules.items() if module and "." not in name
              and getattr(module, "__file__", None)},
    "botocore_patched": hasattr(botocore.client.BaseClient._make_api_call, "__wrapped__"),
}))
"""


def _requirements() -> dict[str, Requirement]:
    return {canonicalize_name(req.name): req for req in map(Requirement, bench._requirement_lines())}


def _pins() -> dict[str, str]:
    pins = {}
    for name, req in _requirements().items():
        (spec,) = req.specifier
        assert spec.operator == "==", f"{req}: the layer's requirements are exact pins"
        pins[name] = spec.version
    return pins


def _registry_reachable() -> bool:
    done = subprocess.run(  # noqa: S603 - our interpreter's pip
        [sys.executable, "-m", "pip", "index", "versions", "--disable-pip-version-check", "aws-lambda-powertools"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode == 0


@dataclass(frozen=True)
class Build:
    layer: Path  # the layer's artifacts folder (it holds python/)
    template: Path  # the template whose functions use it; their CodeUri is relative to its folder

    def handler_files(self) -> list[Path]:
        """Each function's handler module, from the template's CodeUri and Handler."""
        resources = sam_template.load(self.template)["Resources"].values()
        functions = [r["Properties"] for r in resources if r["Type"] == "AWS::Serverless::Function"]
        return [self.template.parent / f["CodeUri"] / f"{f['Handler'].split('.')[0]}.py" for f in functions]


SAM_BUILD = ROOT / "build" / "sam"  # the Makefile's SAM_TEST_BUILD


def _sam_build() -> Build:
    """make test's `sam build`: make finds it up to date when make test has just made it."""
    subprocess.run(  # noqa: S603 - the project's own Makefile
        [shutil.which("make"), "-C", str(ROOT), f"{SAM_BUILD.relative_to(ROOT)}/template.yaml"],
        env=os.environ | {"MAKEFLAGS": ""},  # not make test's own flags (a dry run's -n, say)
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return Build(SAM_BUILD / "MonitorLayer", SAM_BUILD / "template.yaml")


@pytest.fixture(scope="module", params=["layer recipe", "sam build"])
def build(request, tmp_path_factory) -> Build:
    try:
        if request.param == "sam build":
            return _sam_build()
        artifacts = tmp_path_factory.mktemp("layer")
        bench.make_layer(artifacts)
        return Build(artifacts, TEMPLATE)
    except subprocess.CalledProcessError as exc:
        if not _registry_reachable():
            pytest.skip("the package registry is unreachable, so pip cannot fetch the layer's python3.13 arm64 wheels")
        pytest.fail(f"{request.param} failed:\n{exc.stdout}{exc.stderr}")


@pytest.fixture(scope="module")
def layer(build) -> Path:
    return build.layer


@pytest.fixture
def runtime(tmp_path) -> Path:
    """What the python3.13 runtime provides (boto3 and its dependencies), linked from the venv."""
    folder = tmp_path / "runtime"
    folder.mkdir()
    for name in bench.RUNTIME_PROVIDED:
        dist = metadata.distribution(name)
        for top in {file.parts[0] for file in dist.files or ()} - {"..", "bin", "__pycache__"}:
            (folder / top).symlink_to(Path(dist.locate_file(top)))
    return folder


def test_the_layer_ships_exactly_the_pinned_distributions_and_the_package(layer):
    python = layer / "python"
    shipped = {canonicalize_name(name): version for name, version in bench.shipped_distributions(python).items()}
    assert shipped == _pins()

    top_level = {path.name.removesuffix(".py") for path in python.iterdir()}
    assert not top_level & set(bench.RUNTIME_SDK_MODULES), "boto3's tree comes from the runtime"
    assert "bin" not in top_level
    source = sorted(p.relative_to(bench.LAYER_PYTHON) for p in (bench.LAYER_PYTHON / "iics_monitor").rglob("*.py"))
    assert sorted(p.relative_to(python) for p in (python / "iics_monitor").rglob("*.py")) == source
    assert not list(python.rglob("__pycache__")) and not list(python.rglob("*.pyc"))
    assert list(python.glob("wrapt/_wrappers.cpython-313-aarch64-linux-gnu.so")), "wheels for python3.13 arm64"


def test_every_dependency_of_what_ships_is_in_the_layer_or_the_runtime(layer):
    extras = {name: req.extras for name, req in _requirements().items()}
    available = set(extras) | {canonicalize_name(name) for name in bench.RUNTIME_PROVIDED}
    missing = []
    for dist_info in sorted((layer / "python").glob("*.dist-info")):
        dist = metadata.Distribution.at(dist_info)
        wanted = extras.get(canonicalize_name(dist.metadata["Name"]), set()) | {""}
        for dep in map(Requirement, dist.requires or ()):
            needed = dep.marker is None or any(dep.marker.evaluate(LAMBDA_MARKERS | {"extra": e}) for e in wanted)
            if needed and canonicalize_name(dep.name) not in available:
                missing.append(f"{dist.metadata['Name']} needs {dep}")
    assert not missing, "add to layers/iics_monitor/python/requirements.txt: " + "; ".join(missing)


def test_the_layer_pins_are_the_versions_the_tests_run():
    installed = {name: metadata.version(name) for name in _pins()}
    assert installed == _pins()


def test_the_layer_zip_is_within_5_mib_without_the_runtimes_sdk(layer, tmp_path):
    sized = bench.zip_layer(layer, tmp_path / "layer.zip")
    assert sized["zip_bytes"] <= bench.LAYER_TARGET_MIB * bench.MIB
    assert not set(sized["packages"]) & set(bench.RUNTIME_SDK_MODULES)


def test_the_handlers_import_from_the_layer_with_only_boto3s_tree_from_the_runtime(build, runtime, tmp_path):
    layer = build.layer
    handlers = build.handler_files()
    assert handlers and all(path.is_file() for path in handlers), handlers
    # As deployed: tracing on (Lambda's LAMBDA_TASK_ROOT set), so X-Ray patches the runtime's botocore.
    env = {"PATH": os.environ.get("PATH", ""), "LAMBDA_TASK_ROOT": str(tmp_path)}
    env |= bench.AWS_ENV
    for handler in bench.HANDLERS:
        env |= bench.function_env(handler)
    env["POWERTOOLS_TRACE_DISABLED"] = "false"
    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-I", "-S", "-B", "-c", IMPORT_CHILD, str(layer / "python"), str(runtime)]
        + [str(path) for path in handlers],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    files = out["files"]

    for module in (*LAYER_MODULES, "iics_monitor"):
        assert files[module].startswith(str(layer / "python")), f"{module} from {files[module]}"
    for module in ("boto3", "botocore", "s3transfer", "dateutil"):
        assert files[module].startswith(str(runtime)), f"{module} from {files[module]}"
    assert out["botocore_patched"], "X-Ray's patch reaches the runtime's botocore"


def test_the_venv_fallback_builds_the_same_tree(layer, tmp_path):
    method, note = bench.build_layer(tmp_path / "fallback", use_make=False)
    assert method == "venv" and note
    names = {path.name for path in (layer / "python").iterdir()}
    assert {path.name for path in (tmp_path / "fallback" / "python").iterdir()} == names


@pytest.mark.parametrize(
    ("content_uri", "build_method"),
    [("layers/iics_monitor/", "makefile"), ("layers/iics_monitor/python/", "python3.13")],
)
def test_the_local_harness_imports_the_layer_from_its_python_folder(content_uri, build_method, tmp_path):
    """Lambda imports a layer from python/; the harness finds it under either layout of ContentUri."""
    text = TEMPLATE.read_text()
    start = text.index("  MonitorLayer:\n")
    block = text[start : text.index("\n\n", start)]
    lines = [
        f"      ContentUri: {content_uri}" if line.startswith("      ContentUri:") else line
        for line in block.splitlines()
    ]
    lines = [f"      BuildMethod: {build_method}" if line.startswith("      BuildMethod:") else line for line in lines]
    template = tmp_path / "template.yaml"
    template.write_text(text.replace(block, "\n".join(lines)))

    with LocalStack(template=template) as stack:
        layers = stack.client("lambda").list_layers()["Layers"]
        (name,) = [layer["LayerName"] for layer in layers if "MonitorLayer" in layer["LayerName"]]
        assert _registry.code_dirs[f"layer:{name}"] == bench.LAYER_PYTHON
