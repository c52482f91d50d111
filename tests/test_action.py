"""The GitHub Action, the nightly workflow, the crontab line and the systemd units, run here.

No GitHub is needed: `run_action` plays the runner for action.yml's composite steps. It
evaluates every `${{ }}` and `if:` with a small, strict evaluator (an expression it does not
know fails the test instead of turning into an empty string), gives each step its
GITHUB_OUTPUT / GITHUB_ENV / GITHUB_PATH / GITHUB_STEP_SUMMARY files, and runs the `run:`
steps with bash as the runner does. Of the `uses:` steps, the cache ones are played by a
local cache with actions/cache's key rules (so the history really travels from night to
night); the upload ones only check that what they would upload exists. Links are answered by
the fault web on loopback, through the action's `args` input.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
import yaml

from linkkeeper.db import connect
from linkkeeper.demo import example_site_path
from linkkeeper.faultweb import FaultWeb
from linkkeeper.scan import scan_site
from linkkeeper.site import open_site

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
WORKFLOW = ROOT / "examples" / "github" / "nightly.yml"
CRONTAB = ROOT / "examples" / "cron" / "linkkeeper.crontab"
SERVICE = ROOT / "examples" / "systemd" / "linkkeeper.service"
TIMER = ROOT / "examples" / "systemd" / "linkkeeper.timer"
VENV_BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@v\d+$")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- the expression evaluator -----------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<op>==|!=|<=|>=|&&|\|\||[!<>().,])
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
)""", re.VERBOSE)
STATUS_FUNCTIONS = ("always", "success", "failure", "cancelled")


class ExprError(AssertionError):
    """An expression the runner here does not know: the test fails rather than guess."""


@dataclass
class Context:
    inputs: dict[str, str]          # every declared input, defaults applied
    github: dict[str, str]
    runner: dict[str, str]
    step_ids: set[str]              # every id the action declares
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    failed: bool = False

    def lookup(self, path: list[str]) -> Any:
        head, rest = path[0], path[1:]
        if head == "inputs" and len(rest) == 1:
            if rest[0] not in self.inputs:
                raise ExprError(f"inputs.{rest[0]} is not a declared input")
            return self.inputs[rest[0]]
        if head in ("github", "runner") and len(rest) == 1:
            table = self.github if head == "github" else self.runner
            if rest[0] not in table:
                raise ExprError(f"{head}.{rest[0]} has no local equivalent here")
            return table[rest[0]]
        if head == "steps" and len(rest) in (2, 3):
            if rest[0] not in self.step_ids:
                raise ExprError(f"steps.{rest[0]}: no step has this id")
            if len(rest) == 3 and rest[1] == "outputs":
                return self.outputs.get(rest[0], {}).get(rest[2], "")
            if len(rest) == 2 and rest[1] in ("outcome", "conclusion"):
                return self.outcomes.get(rest[0], "")
        raise ExprError(f"unknown context {'.'.join(path)}")


class _Parser:
    def __init__(self, text: str, ctx: Context) -> None:
        self.ctx, self.pos, self.tokens = ctx, 0, []
        at = 0
        while at < len(text.rstrip()):
            m = _TOKEN.match(text, at)
            if not m or m.end() == at:
                raise ExprError(f"cannot read {text[at:]!r} in {text!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            at = m.end()
        self.text = text

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, want: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise ExprError(f"{self.text!r} ends early")
        tok = self.tokens[self.pos]
        if want is not None and tok[1] != want:
            raise ExprError(f"expected {want!r} in {self.text!r}, got {tok[1]!r}")
        self.pos += 1
        return tok

    def parse(self) -> Any:
        value = self.or_()
        if self.pos != len(self.tokens):
            raise ExprError(f"unexpected {self.peek()!r} in {self.text!r}")
        return value

    def or_(self) -> Any:  # GitHub's && and || return an operand, as in JavaScript
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()  # evaluated anyway: unknown names fail even when not needed
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.cmp()
        while self.peek() == "&&":
            self.take()
            right = self.cmp()
            value = right if truthy(value) else value
        return value

    def cmp(self) -> Any:
        left = self.unary()
        if self.peek() in ("==", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            return compare(op, left, self.unary())
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, tok = self.take()
        if tok == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind == "str":
            return tok[1:-1].replace("''", "'")
        if kind == "num":
            return float(tok)
        if kind != "name":
            raise ExprError(f"unexpected {tok!r} in {self.text!r}")
        if tok in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok]
        if self.peek() == "(":
            self.take("(")
            self.take(")")
            if tok not in STATUS_FUNCTIONS:
                raise ExprError(f"function {tok}() is not supported here")
            return {"always": True, "success": not self.ctx.failed,
                    "failure": self.ctx.failed, "cancelled": False}[tok]
        path = [tok]
        while self.peek() == ".":
            self.take()
            kind, name = self.take()
            if kind != "name":
                raise ExprError(f"bad property {name!r} in {self.text!r}")
            path.append(name)
        return self.ctx.lookup(path)


def truthy(value: Any) -> bool:
    return value not in (None, False, "", 0, 0.0)


def compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):  # GitHub compares strings ignoring case
        left, right = left.casefold(), right.casefold()
    elif type(left) is not type(right):
        left, right = _number(left), _number(right)
    return {"==": left == right, "!=": left != right, "<": left < right, ">": left > right,
            "<=": left <= right, ">=": left >= right}[op]


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    try:
        return float(value)
    except ValueError:
        return float("nan")


def evaluate(text: str, ctx: Context) -> Any:
    return _Parser(text, ctx).parse()


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def interpolate(text: Any, ctx: Context) -> str:
    """`${{ expr }}` replaced by its value as the runner writes it ('' for null)."""
    text = "" if text is None else str(text)
    out, at = [], 0
    while (start := text.find("${{", at)) != -1:
        end = text.find("}}", start)
        if end == -1:
            raise ExprError(f"unclosed ${{{{ in {text!r}")
        out.append(text[at:start])
        out.append(as_text(evaluate(text[start + 3:end], ctx)))
        at = end + 2
    out.append(text[at:])
    return "".join(out)


def step_condition(step: dict[str, Any], ctx: Context) -> bool:
    """`if:` with the runner's rule: no status function means `success() && (...)`."""
    cond = str(step.get("if", "success()")).strip()
    if cond.startswith("${{") and cond.endswith("}}"):
        cond = cond[3:-2]
    value = truthy(evaluate(cond, ctx))
    if not any(f"{name}(" in cond for name in STATUS_FUNCTIONS):
        value = value and not ctx.failed
    return value


def test_the_evaluator_is_strict_and_follows_github_rules() -> None:
    ctx = Context(inputs={"fail-on": "new", "archive": "true"}, github={"run_id": "7"},
                  runner={"os": "Linux"}, step_ids={"check"},
                  outputs={"check": {"exit-code": "2"}})
    assert evaluate("inputs.fail-on == 'NEW'", ctx) is True  # strings compare without case
    assert evaluate("steps.check.outputs.exit-code == 2", ctx) is True
    assert evaluate("steps.check.outputs.missing", ctx) == ""
    assert evaluate("inputs.archive != 'true' || 'yes'", ctx) == "yes"
    assert interpolate("k-${{ runner.os }}-${{ github.run_id }}", ctx) == "k-Linux-7"
    for bad in ("inputs.nope", "github.token", "steps.nope.outputs.x", "env.HOME",
                "format('{0}', 1)", "inputs['fail-on']", "secrets.X"):
        with pytest.raises(ExprError):
            evaluate(bad, ctx)
    with pytest.raises(ExprError):
        interpolate("${{ inputs.fail-on ", ctx)
    ctx.failed = True
    assert not step_condition({"if": "inputs.archive == 'true'"}, ctx)
    assert step_condition({"if": "always() && inputs.archive == 'true'"}, ctx)


# --- the runner ---------------------------------------------------------------------------------


@dataclass
class StepRun:
    name: str
    id: str | None
    ran: bool
    rc: int = 0
    log: str = ""


@dataclass
class ActionRun:
    steps: list[StepRun]
    summary: str
    outputs: dict[str, str]
    uses: dict[str, dict[str, str]]  # the `with:` of every uses-step that ran, by action

    @property
    def rc(self) -> int:
        """What the job sees: the first failing step's code (continue-on-error aside)."""
        return next((s.rc for s in self.steps if s.ran and s.rc), 0)

    def step(self, name: str) -> StepRun:
        return next(s for s in self.steps if s.name == name)


def parse_command_file(path: Path) -> dict[str, str]:
    """name=value lines and name<<DELIM heredocs, as in GITHUB_OUTPUT and GITHUB_ENV."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1)
            values[name] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        if line.strip():
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: bad line {line!r}"
            values[name] = value
        i += 1
    return values


class LocalCache:
    """actions/cache's rules on a folder: exact key, else the newest entry with a restore-key
    prefix; entries are immutable; `path` specs must match for an entry to be restored."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.saved: list[str] = []

    def _paths(self, spec: str) -> list[str]:
        return [p.strip() for p in spec.splitlines() if p.strip()]

    def save(self, workspace: Path, w: dict[str, str]) -> dict[str, str]:
        key, specs = w["key"], self._paths(w["path"])
        entry = self.root / key
        assert not entry.exists(), f"cache key {key} saved twice: entries are immutable"
        matched = [m for spec in specs for m in sorted(workspace.glob(spec))]
        if not matched:
            return {}  # the real action warns and saves nothing
        for m in matched:
            dest = entry / "files" / m.relative_to(workspace)
            dest.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if m.is_dir() else shutil.copy2)(m, dest)
        (entry / "paths.json").write_text(json.dumps(specs))
        self.saved.append(key)
        return {}

    def restore(self, workspace: Path, w: dict[str, str]) -> dict[str, str]:
        specs = self._paths(w["path"])
        candidates = [w["key"]] if w["key"] in self.saved else []
        for prefix in self._paths(w.get("restore-keys", "")):
            candidates += [k for k in reversed(self.saved) if k.startswith(prefix)]
        for key in candidates:
            if json.loads((self.root / key / "paths.json").read_text()) != specs:
                continue  # another path list is another cache version
            shutil.copytree(self.root / key / "files", workspace, dirs_exist_ok=True)
            return {"cache-hit": str(key == w["key"]).lower(), "cache-matched-key": key,
                    "cache-primary-key": w["key"]}
        return {"cache-hit": "false", "cache-primary-key": w["key"]}


def fake_upload_sarif(workspace: Path, w: dict[str, str]) -> dict[str, str]:
    assert Path(w["sarif_file"]).is_file(), w
    return {}


def fake_upload_artifact(workspace: Path, w: dict[str, str]) -> dict[str, str]:
    assert w["name"] and Path(w["path"]).is_dir() and any(Path(w["path"]).iterdir()), w
    return {}


def fake_setup_python(workspace: Path, w: dict[str, str]) -> dict[str, str]:
    assert re.fullmatch(r"3\.(1[1-9]|[2-9]\d)(\.\d+)?", w["python-version"]), w
    return {"python-version": w["python-version"]}


def clean_env() -> dict[str, str]:
    """The test's environment without LINKKEEPER_* (they would change what `check` does)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LINKKEEPER_", "GITHUB_"))}


def run_action(inputs: dict[str, str], *, workspace: Path, runner_temp: Path, run_id: int,
               cache: LocalCache, tools: Path | None = None) -> ActionRun:
    """Play the runner for action.yml; `tools`: a folder of stand-in commands on PATH."""
    action = load_yaml(ACTION)
    declared = action["inputs"]
    unknown = set(inputs) - set(declared)
    assert not unknown, f"inputs the action does not declare: {unknown}"
    steps = action["runs"]["steps"]
    ctx = Context(
        inputs={name: str(inputs.get(name, spec.get("default", ""))) for name, spec in
                declared.items()},
        github={"action_path": str(ROOT), "workspace": str(workspace), "run_id": str(run_id),
                "run_attempt": "1"},
        runner={"os": "Linux", "temp": str(runner_temp)},
        step_ids={s["id"] for s in steps if "id" in s},
    )
    fakes: dict[str, Callable[[Path, dict[str, str]], dict[str, str]]] = {
        "actions/cache/restore": cache.restore, "actions/cache/save": cache.save,
        "github/codeql-action/upload-sarif": fake_upload_sarif,
        "actions/upload-artifact": fake_upload_artifact,
        "actions/setup-python": fake_setup_python,
    }
    runner_temp.mkdir(parents=True, exist_ok=True)
    env_extra: dict[str, str] = {}
    path_extra: list[str] = []
    summary: list[str] = []
    done: list[StepRun] = []
    uses: dict[str, dict[str, str]] = {}
    for n, step in enumerate(steps):
        record = StepRun(step["name"], step.get("id"), ran=step_condition(step, ctx))
        done.append(record)
        if not record.ran:
            if record.id:
                ctx.outcomes[record.id] = "skipped"
            continue
        outputs: dict[str, str] = {}
        if "uses" in step:
            name = step["uses"].split("@")[0]
            assert name in fakes, f"step {step['name']!r} ({name}) would run here: no fake for it"
            w = {k: interpolate(v, ctx) for k, v in (step.get("with") or {}).items()}
            uses[name] = w
            outputs = fakes[name](workspace, w)
        else:
            assert step.get("shell") == "bash", f"{step['name']}: composite run steps need shell"
            files = {k: runner_temp / f"_{k.lower()}_{n}" for k in
                     ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")}
            for f in files.values():
                f.write_text("")
            script = runner_temp / f"_step_{n}.sh"
            script.write_text(interpolate(step["run"], ctx), encoding="utf-8")
            env = clean_env() | env_extra | {k: str(v) for k, v in files.items()} | {
                "GITHUB_ACTION_PATH": str(ROOT), "GITHUB_WORKSPACE": str(workspace),
                "RUNNER_TEMP": str(runner_temp), "RUNNER_OS": "Linux", "CI": "true",
                "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": str(run_id),
            } | {k: interpolate(v, ctx) for k, v in (step.get("env") or {}).items()}
            env["PATH"] = os.pathsep.join([*reversed(path_extra), *([str(tools)] if tools else []),
                                           str(VENV_BIN), env["PATH"]])
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail",
                                   str(script)], cwd=workspace, env=env, capture_output=True,
                                  text=True, timeout=120)
            record.rc, record.log = proc.returncode, proc.stdout + proc.stderr
            outputs = parse_command_file(files["GITHUB_OUTPUT"])
            env_extra |= parse_command_file(files["GITHUB_ENV"])
            path_extra += files["GITHUB_PATH"].read_text().split()
            summary.append(files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8"))
        if record.id:
            ctx.outputs[record.id] = outputs
            ctx.outcomes[record.id] = "failure" if record.rc else "success"
        if record.rc and not step.get("continue-on-error"):
            ctx.failed = True
    action_outputs = {k: interpolate(v["value"], ctx) for k, v in action["outputs"].items()}
    return ActionRun(done, "".join(summary), action_outputs, uses)


# --- the fault web and the nights ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultWeb]:
    """The fault web answering the example site's made-up hosts, as `linkkeeper demo` starts it."""
    scratch = tmp_path_factory.mktemp("hosts")
    site = scratch / "site"
    shutil.copytree(example_site_path(), site)
    db = connect(scratch / "hosts.db")
    scan_site(db, open_site([site]))
    hosts = [h for (h,) in db.execute(
        "SELECT DISTINCT host FROM links WHERE status IS NULL AND host != ''")
        if not h.endswith(".invalid")]
    with FaultWeb(hosts=hosts) as web:
        yield web


def fault_args(web: FaultWeb) -> str:
    """The action's `args` input for the fault web: one option per line, quotes where needed."""
    lines = ["--offline-dns", f"--ca-bundle {shlex.quote(web.ca_pem)}",
             "--attempts 2 --timeout 5", "--user-agent 'linkkeeper action test'"]
    lines += [f"--connect-to {spec}" for spec in web.connect_to_args(wildcard=False)]
    return "\n".join(lines)


def night(tmp: Path, n: int, cache: LocalCache, inputs: dict[str, str]) -> tuple[Path, ActionRun]:
    """A fresh checkout (the site in blog/) and a fresh runner, as every scheduled run gets."""
    workspace = tmp / f"night{n}" / "repo"
    shutil.copytree(example_site_path(), workspace / "blog")
    run = run_action({"site": "blog", "install": "false"} | inputs, workspace=workspace,
                     runner_temp=tmp / f"night{n}" / "temp", run_id=1000 + n, cache=cache)
    return workspace, run


def check_sarif(path: Path, workspace: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["version"] == "2.1.0" and "sarif-schema-2.1.0" in doc["$schema"]
    run = doc["runs"][0]
    assert run["tool"]["driver"]["name"] == "linkkeeper"
    # code scanning's category is the id up to its last '/': the same every night, so a night's
    # upload replaces the previous night's alerts (fixed links close) instead of adding to them
    assert run["automationDetails"]["id"].rsplit("/", 1)[0] == "linkkeeper"
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert run["results"], "the example site has broken links"
    for result in run["results"]:
        assert result["ruleId"] == rule_ids[result["ruleIndex"]]
        assert result["level"] in ("error", "warning", "note") and result["message"]["text"]
        (loc,) = result["locations"]
        phys = loc["physicalLocation"]
        uri = phys["artifactLocation"]["uri"]
        assert phys["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert uri.startswith("blog/_posts/"), uri  # relative to the repository, not the site
        assert uri == quote(unquote(uri), safe="/"), uri  # a URI: spaces and CJK encoded
        post = workspace / unquote(uri)
        assert post.is_file(), uri
        line = phys["region"]["startLine"]
        assert 1 <= line <= len(post.read_bytes().splitlines())
    return doc


REPORT_STEPS = ("Check the links", "Write the summary and reports", "Save the link history",
                "Annotate the posts (code scanning)", "Upload the report")


def test_action_runs_nights_against_the_fault_web(tmp_path: Path, fault_web: FaultWeb) -> None:
    cache = LocalCache(tmp_path / "cache")
    args = fault_args(fault_web)

    # Night 1: nothing to restore; fail-on never passes although links are broken.
    seen = len(fault_web.log)
    ws, run = night(tmp_path, 1, cache, {"args": args, "fail-on": "never"})
    agents = {entry.user_agent for entry in fault_web.log[seen:]}
    assert agents == {"linkkeeper action test"}, "args: quoted words stay one argument"
    assert run.step("Restore the link history").ran
    assert run.rc == 0, [(s.name, s.rc, s.log[-2000:]) for s in run.steps if s.rc]
    assert all(run.step(name).ran and run.step(name).rc == 0 for name in REPORT_STEPS)
    assert not run.step("Install linkkeeper").ran and not run.step("Set up Python").ran
    assert "## linkkeeper:" in run.summary and "(run 1 vs the first run)" in run.summary
    assert "| checked | alive | failing | dead |" in run.summary
    assert "|---:|" in run.summary
    check_sarif(Path(run.outputs["sarif-file"]), ws)
    html = Path(run.outputs["report"])
    assert html.is_file() and "<html" in html.read_text(encoding="utf-8")[:500].lower()
    assert run.outputs["exit-code"] == "0"
    assert run.uses["actions/upload-artifact"]["path"] == str(Path(run.outputs["report"]).parent)
    assert run.uses["github/codeql-action/upload-sarif"]["sarif_file"] == run.outputs["sarif-file"]
    assert cache.saved == ["linkkeeper-Linux-1001-1"]
    assert list((ws / "blog" / "warcs").rglob("*.warc.gz")), "archive: true writes WARCs"

    # Night 2: the history comes back from the cache; fail-on any fails, in the last step only.
    ws, run = night(tmp_path, 2, cache, {"args": args, "fail-on": "any", "archive": "false"})
    assert "(run 2 vs run 1)" in run.summary, run.summary[:300]
    assert "|---:|" in run.summary
    assert run.outputs["exit-code"] == "2"
    assert all(run.step(name).ran and run.step(name).rc == 0 for name in REPORT_STEPS)
    assert run.steps[-1].name == "Fail by fail-on" and run.steps[-1].rc == 2
    assert run.rc == 2 and "::error" in run.steps[-1].log
    assert "--no-snapshot" in run.step("Check the links").log
    check_sarif(Path(run.outputs["sarif-file"]), ws)
    with sqlite3.connect(ws / "blog" / "linkkeeper.db") as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 2

    # Night 3: the default fail-on (new): nothing broke since night 2, so the job passes.
    ws, run = night(tmp_path, 3, cache, {"args": args})
    assert "(run 3 vs run 2)" in run.summary
    assert run.outputs["exit-code"] == "0" and run.rc == 0, run.step("Check the links").log[-3000:]
    assert cache.saved == [f"linkkeeper-Linux-100{n}-1" for n in (1, 2, 3)]

    # Night 4: a configuration error: exit 3, no report, and no cache entry hiding the history.
    ws, run = night(tmp_path, 4, cache, {"fail-on": "sometimes"})
    assert run.outputs["exit-code"] == "3" and run.rc == 3
    assert not run.step("Write the summary and reports").ran
    assert not run.step("Save the link history").ran
    assert not run.step("Upload the report").ran
    assert not run.step("Annotate the posts (code scanning)").ran
    assert "did not finish (exit code 3)" in run.summary
    assert len(cache.saved) == 3

    # Night 5: args with an unmatched quote stop the action before linkkeeper runs.
    ws, run = night(tmp_path, 5, cache, {"args": "--site-url 'https://example.org"})
    assert run.step("Check the links").rc == 3 and "unmatched quote" in run.step("Check the links").log
    assert not run.steps[-1].ran and len(cache.saved) == 3


STUB_PYTHON = """#!/bin/sh
# python3 -m venv DIR: a "venv" whose pip logs its requirement and whose linkkeeper logs calls
[ "$1 $2" = "-m venv" ] || exit 99
mkdir -p "$3/bin"
printf '#!/bin/sh\necho "pip $*" >> "%s/calls"\n' "$3" > "$3/bin/python"
printf '#!/bin/sh\necho "linkkeeper $*" >> "%s/calls"\n[ "$1" = check ] && exit 3\nexit 0\n' \
  "$3" > "$3/bin/linkkeeper"
chmod +x "$3/bin/python" "$3/bin/linkkeeper"
"""


@pytest.mark.parametrize(("version", "requirement"), [
    ("", str(ROOT)), ("0.2.0", "linkkeeper==0.2.0"),
    ("git+https://github.com/o/linkkeeper@main", "git+https://github.com/o/linkkeeper@main")])
def test_install_puts_its_linkkeeper_first_on_path(tmp_path: Path, version: str,
                                                    requirement: str) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "python3").write_text(STUB_PYTHON)
    (tools / "python3").chmod(0o755)
    workspace = tmp_path / "repo"
    shutil.copytree(example_site_path(), workspace)
    run = run_action({"version": version}, workspace=workspace, runner_temp=tmp_path / "temp",
                     run_id=1, cache=LocalCache(tmp_path / "cache"), tools=tools)
    assert run.step("Set up Python").ran and run.step("Install linkkeeper").rc == 0
    calls = (tmp_path / "temp" / "linkkeeper-venv" / "calls").read_text().splitlines()
    assert calls[0].startswith("pip -m pip install") and calls[0].endswith(" " + requirement)
    assert calls[1] == "linkkeeper --version"
    assert calls[2].startswith("linkkeeper check . --db ./linkkeeper.db --warc-dir ./warcs")
    assert run.outputs["exit-code"] == "3" and run.rc == 3


# --- the action's metadata ------------------------------------------------------------------------


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def test_every_input_is_documented_and_used() -> None:
    action = load_yaml(ACTION)
    assert action["runs"]["using"] == "composite"
    assert action["name"] and action["description"]
    used = "\n".join(_strings(action["runs"]))
    for name, spec in action["inputs"].items():
        assert len(spec.get("description", "")) > 20, f"input {name} needs a description"
        assert "default" in spec and isinstance(spec["default"], str), f"input {name}: default"
        assert re.search(rf"inputs\.{re.escape(name)}(?![\w-])", used), f"input {name} is unused"
    for name, spec in action["outputs"].items():
        assert spec.get("description") and spec.get("value"), f"output {name}"
    ids = [s["id"] for s in action["runs"]["steps"] if "id" in s]
    assert len(ids) == len(set(ids))


def test_the_action_is_safe_and_pinned() -> None:
    action = load_yaml(ACTION)
    for step in action["runs"]["steps"]:
        assert step.get("name"), step
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{step['uses']}: pin third-party actions to @vN"
        else:  # inputs reach scripts through env only: no ${{ }} pasted into shell code
            assert "${{" not in step["run"], f"{step['name']}: use env: for expressions"
    steps = action["runs"]["steps"]
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore@"))
    save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save@"))
    assert restore["with"]["path"] == save["with"]["path"], "a cache entry restores by its paths"
    assert restore["with"]["key"] == save["with"]["key"]
    assert "github.run_id" in save["with"]["key"], "one entry per night keeps every night"
    assert save["with"]["key"].startswith(restore["with"]["restore-keys"].strip().rstrip("-"))
    assert steps[-1]["name"] == "Fail by fail-on", "the job fails only after the reports"


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_the_shell_steps_pass_shellcheck(tmp_path: Path) -> None:
    scripts = [s["run"] for s in load_yaml(ACTION)["runs"]["steps"] if "run" in s]
    _, jobs = parse_crontab(CRONTAB.read_text(encoding="utf-8"))
    for n, script in enumerate([*scripts, jobs[0][1]]):
        path = tmp_path / f"step{n}.sh"
        path.write_text(script)
        # the crontab's inner script is single-quoted on purpose: $BLOG and $rc expand inside
        shell = ["-s", "bash"] if n < len(scripts) else ["-s", "sh", "-e", "SC2016"]
        proc = subprocess.run(["shellcheck", *shell, str(path)], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout


def test_the_nightly_workflow_uses_the_action_correctly() -> None:
    workflow = load_yaml(WORKFLOW)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    (schedule,) = triggers["schedule"]
    fields = schedule["cron"].split()
    assert len(fields) == 5 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields)
    assert "workflow_dispatch" in triggers
    assert workflow["permissions"]["security-events"] == "write"
    assert workflow["permissions"]["contents"] == "read"
    inputs = load_yaml(ACTION)["inputs"]
    (job,) = workflow["jobs"].values()
    ours = [s for s in job["steps"] if "linkkeeper" in s.get("uses", "").split("@")[0]]
    assert len(ours) == 1
    step = ours[0]
    assert set(step.get("with", {})) <= set(inputs), set(step.get("with", {})) - set(inputs)
    assert step["with"].get("fail-on", "new") in ("new", "any", "never")
    assert "site" in step["with"]
    for s in job["steps"]:
        if "uses" in s:
            assert PINNED.match(s["uses"]), s["uses"]
    assert "concurrency" in workflow, "two nights must not share a history at once"


# --- the crontab line and the systemd units --------------------------------------------------------


def fault_env(web: FaultWeb) -> dict[str, str]:
    """The fault web through linkkeeper's environment variables (what a self-hosted run sets)."""
    return {"LINKKEEPER_OFFLINE_DNS": "1", "LINKKEEPER_CA_BUNDLE": web.ca_pem,
            "LINKKEEPER_CONNECT_TO": " ".join(web.connect_to_args(wildcard=False)),
            "LINKKEEPER_ATTEMPTS": "2", "LINKKEEPER_TIMEOUT": "5"}


def parse_crontab(text: str) -> tuple[dict[str, str], list[tuple[list[str], str]]]:
    env: dict[str, str] = {}
    jobs: list[tuple[list[str], str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", line):
            name, value = line.split("=", 1)
            env[name.strip()] = value.strip()
            continue
        parts = line.split(None, 5)
        jobs.append((parts[:5], parts[5]))
    return env, jobs


def test_the_crontab_line_runs_a_night(tmp_path: Path, fault_web: FaultWeb) -> None:
    env, jobs = parse_crontab(CRONTAB.read_text(encoding="utf-8"))
    (fields, command), = jobs
    ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for value, (lo, hi) in zip(fields, ranges, strict=True):
        assert value == "*" or lo <= int(value) <= hi, fields
    assert "%" not in command.replace("\\%", ""), "cron turns a bare % into a newline"
    blog = tmp_path / "blog"
    shutil.copytree(example_site_path(), blog)
    run_env = clean_env() | env | fault_env(fault_web) | {
        "BLOG": str(blog), "PATH": f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"}
    proc = subprocess.run([env.get("SHELL", "/bin/sh"), "-c", command], env=run_env,
                          capture_output=True, text=True, timeout=120)
    # the first night: every broken link is new, so cron mails the Markdown report
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "## linkkeeper:" in proc.stdout and "| checked |" in proc.stdout
    assert (blog / "reports" / "index.html").is_file()
    proc = subprocess.run([env.get("SHELL", "/bin/sh"), "-c", command], env=run_env,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), "a quiet night mails nothing"


def read_unit(path: Path) -> configparser.RawConfigParser:
    unit = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                        comment_prefixes=("#", ";"))
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are CamelCase
    unit.read_string(path.read_text(encoding="utf-8"))
    return unit


def test_the_systemd_units_parse_and_run_a_night(tmp_path: Path, fault_web: FaultWeb) -> None:
    timer, service = read_unit(TIMER), read_unit(SERVICE)
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert timer["Timer"].get("Unit", "linkkeeper.service") == SERVICE.name
    assert service["Service"]["Type"] == "oneshot"
    if shutil.which("systemd-analyze"):
        proc = subprocess.run(["systemd-analyze", "calendar", timer["Timer"]["OnCalendar"]],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
    # ExecStart then ExecStopPost (which systemd runs after a failure too), with the unit's
    # Environment= expanded as systemd does and the install path pointed at this venv
    unit_env = dict(shlex.split(e)[0].split("=", 1) for e in
                    [service["Service"]["Environment"]])
    blog = tmp_path / "blog"
    shutil.copytree(example_site_path(), blog)
    unit_env["BLOG"] = str(blog)

    def command(key: str) -> list[str]:
        line = re.sub(r"\$\{(\w+)\}", lambda m: unit_env[m.group(1)], service["Service"][key])
        argv = shlex.split(line.lstrip("-"))
        assert argv[0].endswith("/bin/linkkeeper")
        return [str(VENV_BIN / "linkkeeper"), *argv[1:]]

    env = clean_env() | fault_env(fault_web)
    first = subprocess.run(command("ExecStart"), env=env, capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
    assert first.returncode == 2, first.stderr[-2000:]  # new broken links: the unit fails
    post = subprocess.run(command("ExecStopPost"), env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert post.returncode == 0, post.stderr
    assert (blog / "reports" / "index.html").is_file()
