"""The engine examples of examples/shards/ (issue 15): well-formed, schema-valid, consistent.

The Kubernetes manifest is checked against the API schemas kubernetes-validate ships (no
cluster needed), the GitHub workflow against the schema check-jsonschema vendors (no
network); both also against what the shard/merge design needs (1-based shards from a
0-based index, as many shards as completions, the merge after the shards), and their shell
scripts with `sh -n`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "shards"
K8S = EXAMPLES / "k8s-indexed-job.yaml"
GITHUB = EXAMPLES / "github-matrix.yml"


def documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)
    return docs


def by_name(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def shell_ok(script: str) -> None:
    sh = shutil.which("sh")
    assert sh is not None
    res = subprocess.run([sh, "-n"], input=script, text=True, capture_output=True)
    assert res.returncode == 0, res.stderr


def test_kubernetes_manifest_passes_the_api_schema() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    for doc in documents(K8S):
        kv.validate(doc, "1.30", strict=True)  # raises on unknown or missing fields


def test_kubernetes_validator_catches_mistakes() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    job = by_name(documents(K8S), "Job", "linkkeeper-shards")
    job["spec"]["completionMode"] = 4  # not a string
    with pytest.raises(kv.ValidationError):
        kv.validate(job, "1.30", strict=True)


def test_kubernetes_shards_and_merge_fit_together() -> None:
    docs = documents(K8S)
    shards = by_name(docs, "Job", "linkkeeper-shards")["spec"]
    assert shards["completionMode"] == "Indexed"
    (check,) = shards["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in check["env"]}
    assert int(env["SHARDS"]) == shards["completions"] >= shards["parallelism"] >= 1
    script = check["args"][0]
    assert "I=$((JOB_COMPLETION_INDEX + 1))" in script  # --shard is 1-based
    assert '--shard "$I/$SHARDS"' in script
    assert re.search(r'--warc-dir "\$OUT/warcs"', script) and "$OUT/linkkeeper.db" in script
    shell_ok(script)
    claim = by_name(docs, "PersistentVolumeClaim", "linkkeeper-data")
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    merge = by_name(docs, "Job", "linkkeeper-merge")["spec"]["template"]["spec"]
    (wait,) = merge["initContainers"]
    assert "job/linkkeeper-shards" in wait["args"]
    (merger,) = merge["containers"]
    assert "linkkeeper merge --db" in merger["args"][0] and "/data/shards/*" in merger["args"][0]
    shell_ok(merger["args"][0])
    for spec in (shards["template"]["spec"], merge):
        claims = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]
                  if "persistentVolumeClaim" in v}
        assert claims == {"linkkeeper-data"}
    role = by_name(docs, "Role", "linkkeeper-merge")
    assert role["rules"] == [{"apiGroups": ["batch"], "resources": ["jobs"],
                              "verbs": ["get", "list", "watch"]}]


def test_github_workflow_passes_its_schema() -> None:
    pytest.importorskip("check_jsonschema")
    res = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-workflows", str(GITHUB)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_github_matrix_then_merge() -> None:
    (doc,) = documents(GITHUB)
    jobs = doc["jobs"]
    check, merge = jobs["check"], jobs["merge"]
    shards = check["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1))  # 1-based, N = strategy.job-total
    assert check["strategy"]["fail-fast"] is False
    run = "\n".join(s.get("run", "") for s in check["steps"])
    assert '--shard "${{ matrix.shard }}/${{ strategy.job-total }}"' in run
    assert "--db shard/linkkeeper.db --warc-dir shard/warcs" in run
    uploads = [s for s in check["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "shard/"
    assert merge["needs"] == "check"
    downloads = [s for s in merge["steps"]
                 if s.get("uses", "").startswith("actions/download-artifact")]
    assert downloads[0]["with"]["pattern"] == "linkkeeper-shard-*"
    merge_run = "\n".join(s.get("run", "") for s in merge["steps"])
    assert "linkkeeper merge --db merged/linkkeeper.db" in merge_run and "shards/*" in merge_run
    for step in check["steps"] + merge["steps"]:
        if "run" in step:
            shell_ok(re.sub(r"\$\{\{[^}]*\}\}", "X", step["run"]))
