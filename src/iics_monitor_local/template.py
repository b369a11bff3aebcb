"""template.yaml as CloudFormation, offline: what `sam package` and the SAM transform make of it.

The local stack deploys this into moto, checkov scans it (`make lint`), and the hardening tests read
it. ``python -m iics_monitor_local.template`` prints it as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The transform records metrics for AWS's own service and, when nobody publishes them, warns on stderr
# whenever they are garbage collected (in the middle of a command's output).
logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = PROJECT_ROOT / "template.yaml"
# Local path properties that `sam package` turns into S3 locations.
LOCAL_URIS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}


class _NoManagedPolicies:
    """aws-sam-translator asks for AWS managed policy ARNs by name; offline, none are known."""

    def load(self) -> dict:
        return {}


def load(path: Path = TEMPLATE) -> dict:
    return yaml_parse(path.read_text())


def local_artifacts(sam: dict) -> Iterator[tuple[str, dict, str, Path]]:
    """(logical id, resource, property, local path) of every code folder or file to package."""
    for logical_id, resource in sam["Resources"].items():
        prop = LOCAL_URIS.get(resource["Type"])
        local = resource.get("Properties", {}).get(prop) if prop else None
        if isinstance(local, str) and not local.startswith("s3://"):
            yield logical_id, resource, prop, (TEMPLATE.parent / local).resolve()


def variant(edit: Callable[[dict], None], path: Path) -> Path:
    """A copy of template.yaml, changed by ``edit`` (given the template as data), written to ``path`` as
    JSON (which the SAM parser reads). Its local paths still point into this project."""
    sam = load()
    edit(sam)
    for _, resource, prop, local in local_artifacts(sam):
        resource["Properties"][prop] = str(local)
    path.write_text(json.dumps(sam, indent=1))
    return path


def translate(sam: dict, parameters: Mapping[str, str] | None = None) -> dict:
    """The SAM transform of a template whose artifacts already point at S3."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the transform needs a region, no more
    return transform(sam, dict(parameters or {}), _NoManagedPolicies())


def translated(parameters: Mapping[str, str] | None = None, bucket: str = "package") -> dict:
    """template.yaml as CloudFormation, with its artifacts at ``s3://<bucket>/<path>``."""
    sam = load()
    for _, resource, prop, path in local_artifacts(sam):
        resource["Properties"][prop] = f"s3://{bucket}/{path.relative_to(PROJECT_ROOT).as_posix()}"
    return translate(sam, parameters)


if __name__ == "__main__":
    json.dump(translated(), sys.stdout, indent=1)
