"""Mutation check of the code that keeps people out: does a test fail when a check is broken?

For each target (a module and the functions in it that decide who gets in), every mutant
changes one thing: a comparison flipped (``==``/``!=``, ``<``/``>=``, ``in``/``not in``,
``is``/``is not``), ``and``/``or`` swapped, a ``not`` dropped, an ``if`` condition negated, a
``return True``/``False`` inverted, a ``raise`` or an early ``return`` removed, a number
changed by one. The mutant is written to a scratch copy of ``src`` and the target's tests run
against it (``PYTHONPATH`` first, the pure Python wire path unless the target says, ``-x``):
a failing run kills the mutant, a passing one lets it survive. Survivors are printed with
their line: each is a check no test guards, or an equivalent mutant (say which in the note).

Run by hand, with nothing else loading the machine (each mutant costs one test run):

    .venv/bin/python bench/mutants.py                        # every target
    .venv/bin/python bench/mutants.py --target codec --limit 20
    .venv/bin/python bench/mutants.py --list                 # the mutants, without running
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    name: str
    module: str  # path under src/
    functions: tuple[str, ...]  # qualified names ("Class.method"); () for the whole module
    tests: tuple[str, ...]  # pytest arguments
    # How the tests run: with the pure Python wire path (True: RADIUS_CONTRACTS_PURE_PYTHON=1,
    # so the Python checks run even where C speedups would stand in) and/or with the C
    # speedups (False: code that calls the C module, such as the listener's fast path, is
    # then exercised). A mutant is killed when a run in any mode fails.
    modes: tuple[bool, ...] = (True,)


TARGETS = (
    Target(
        "codec",
        "radius_contracts/radius/codec.py",
        (
            "verify_message_authenticator",
            "verify_request_authenticator",
            "verify_response_authenticator",
            "decode",
            "decode_password",
        ),
        ("tests/unit/radius/test_codec.py", "tests/unit/radius/test_wire.py"),
    ),
    Target(
        "protocol",
        "radius_contracts/radius/protocol.py",
        (
            "RadiusProtocol._received",
            "RadiusProtocol._status_server",
            "RadiusProtocol._access_request",
            "RadiusProtocol._fast_access",
            "RadiusProtocol._admissible",
            "RadiusProtocol._accounting_request",
            "RadiusProtocol._fast_accounting",
        ),
        (
            "tests/integration/test_radius_auth.py",
            "tests/integration/test_radius_accounting.py",
            "tests/unit/radius/test_udp.py",
            "-k",
            "sqlite or not postgres",
        ),
        modes=(True, False),  # the Python path, then the C wire's fast path
    ),
    Target(
        "authenticate",
        "radius_contracts/aaa/authenticate.py",
        (),
        (
            "tests/unit/aaa/test_authenticate.py",
            "tests/unit/aaa/test_chap_challenges.py",
            "tests/unit/aaa/test_mschap.py",
        ),
        modes=(False,),  # its tests run the C and the Python MS-CHAPv2 check both
    ),
    Target(
        "authorize",
        "radius_contracts/aaa/authorize.py",
        (),
        ("tests/unit/aaa/test_authorize.py", "tests/unit/aaa/test_reject_reasons.py"),
    ),
    Target(
        "api-tokens",
        "radius_contracts/api/deps.py",
        ("get_caller", "get_actor"),
        (
            "tests/integration/test_api_auth_audit.py",
            "tests/integration/test_api_sessions.py",
            "-k",
            "sqlite or not postgres",
        ),
    ),
    Target(
        "api-guard",
        "radius_contracts/api/guard.py",
        (),
        (
            "tests/integration/test_api_guard.py",
            "tests/integration/test_api_auth_audit.py",
            "-k",
            "sqlite or not postgres",
        ),
    ),
)

_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass(frozen=True)
class Mutant:
    index: int  # the index-th mutation point of the target, in walk order
    line: int
    what: str


def _functions(tree: ast.Module, names: tuple[str, ...]) -> Iterator[ast.AST]:
    """The function nodes named (``Class.method`` or ``function``); the module when none."""
    if not names:
        yield tree
        return
    wanted = set(names)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in wanted:
            yield node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                qualified = f"{node.name}.{getattr(item, 'name', '')}"
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and qualified in wanted:
                    yield item


def _points(tree: ast.Module, names: tuple[str, ...]) -> list[tuple[ast.AST, str, int]]:
    """(node, kind, variant) of every mutation, in a fixed order."""
    points: list[tuple[ast.AST, str, int]] = []
    for function in _functions(tree, names):
        for node in ast.walk(function):
            if isinstance(node, ast.Compare):
                for i, op in enumerate(node.ops):
                    if type(op) in _FLIP:
                        points.append((node, "compare", i))
            elif isinstance(node, ast.BoolOp):
                points.append((node, "boolop", 0))
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
                points.append((node, "not", 0))
            elif isinstance(node, ast.If | ast.While):
                points.append((node, "negate", 0))
            elif isinstance(node, ast.Return):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, bool):
                    points.append((node, "return-bool", 0))
            elif isinstance(node, ast.Raise):
                points.append((node, "drop-raise", 0))
            elif (
                isinstance(node, ast.Constant)
                and type(node.value) is int
                and not isinstance(node.value, bool)
            ):
                points.append((node, "number", 0))
        for node in ast.walk(function):
            # An early return inside an if: the check that stops processing, removed.
            if isinstance(node, ast.If):
                for child in node.body:
                    if isinstance(child, ast.Return):
                        points.append((child, "drop-return", 0))
    return points


def _describe(node: ast.AST, kind: str, variant: int) -> str:
    if isinstance(node, ast.Compare):
        op = node.ops[variant]
        return f"{type(op).__name__} -> {_FLIP[type(op)].__name__}"
    if isinstance(node, ast.BoolOp):
        return "and -> or" if isinstance(node.op, ast.And) else "or -> and"
    return {
        "not": "not x -> x",
        "negate": "if c -> if not c",
        "return-bool": "return bool inverted",
        "drop-raise": "raise -> pass",
        "drop-return": "early return -> pass",
        "number": f"{getattr(node, 'value', '?')} -> +1",
    }[kind]


def mutants(source: str, target: Target) -> list[Mutant]:
    tree = ast.parse(source)
    return [
        Mutant(i, getattr(node, "lineno", 0), _describe(node, kind, variant))
        for i, (node, kind, variant) in enumerate(_points(tree, target.functions))
    ]


def mutate(source: str, target: Target, index: int) -> str:
    """``source`` with the index-th mutation applied."""
    tree = ast.parse(source)
    node, kind, variant = _points(tree, target.functions)[index]
    if isinstance(node, ast.Compare):
        node.ops[variant] = _FLIP[type(node.ops[variant])]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "not":
        assert isinstance(node, ast.UnaryOp)
        _replace(tree, node, node.operand)
    elif kind == "negate":
        assert isinstance(node, ast.If | ast.While)
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif kind == "return-bool":
        assert isinstance(node, ast.Return) and isinstance(node.value, ast.Constant)
        node.value.value = not node.value.value
    elif kind in ("drop-raise", "drop-return"):
        _replace(tree, node, ast.Pass())
    elif kind == "number":
        assert isinstance(node, ast.Constant)
        node.value = node.value + 1
    return ast.unparse(ast.fix_missing_locations(tree))


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list) and any(item is old for item in value):
                setattr(parent, field, [new if item is old else item for item in value])
                return
    raise LookupError("node not found")


def run_tests(scratch: Path, target: Target, timeout: float) -> tuple[bool, float, str]:
    """(passed, seconds, output) of the target's tests against ``scratch``/src, in every mode
    (stopping at the first that fails)."""
    seconds, output = 0.0, ""
    for pure in target.modes:
        passed, took, output = _run_once(scratch, target, pure, timeout)
        seconds += took
        if not passed:
            return False, seconds, output
    return True, seconds, output


def _run_once(scratch: Path, target: Target, pure: bool, timeout: float) -> tuple[bool, float, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(scratch / "src")
    env.pop("RADIUS_CONTRACTS_PURE_PYTHON", None)
    if pure:
        env["RADIUS_CONTRACTS_PURE_PYTHON"] = "1"
    command = [
        sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
        "-p", "no:randomly", *target.tests,
    ]  # fmt: skip
    started = time.monotonic()
    # Its own process group: on a timeout the daemons its tests started go with it.
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return False, time.monotonic() - started, "timeout"  # hangs count as killed
    output = stdout.decode(errors="replace")
    return process.returncode == 0, time.monotonic() - started, output


def check(target: Target, limit: int | None, scratch: Path) -> tuple[int, list[Mutant]]:
    path = scratch / "src" / target.module
    original = path.read_text()
    found = mutants(original, target)[:limit]
    for _attempt in range(2):  # a test that failed once on a busy machine gets one more go
        passed, baseline, output = run_tests(scratch, target, timeout=900)
        if passed:
            break
    else:
        tail = "\n".join(output.splitlines()[-30:])
        raise SystemExit(f"{target.name}: the tests fail on the unmutated code:\n{tail}")
    survivors = []
    try:
        for mutant in found:
            path.write_text(mutate(original, target, mutant.index))
            survived, _, _ = run_tests(scratch, target, timeout=max(60.0, 3 * baseline))
            mark = "SURVIVED" if survived else "killed"
            where = f"{target.name} {mutant.index:3d} line {mutant.line:4d}"
            print(f"  {where} {mutant.what:28s} {mark}", flush=True)
            if survived:
                survivors.append(mutant)
    finally:
        path.write_text(original)
    return len(found), survivors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", help="a target name (default: all)")
    parser.add_argument("--limit", type=int, help="at most this many mutants per target")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    args = parser.parse_args()
    targets = [t for t in TARGETS if not args.target or t.name in args.target]
    if args.list:
        for target in targets:
            source = (ROOT / "src" / target.module).read_text()
            for mutant in mutants(source, target)[: args.limit]:
                print(f"{target.name} {mutant.index:3d} line {mutant.line:4d} {mutant.what}")
        return 0
    totals: list[tuple[str, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="rc-mutants-") as tmp:
        scratch = Path(tmp)
        shutil.copytree(ROOT / "src", scratch / "src", ignore=shutil.ignore_patterns("*.egg-info"))
        # The default dictionary is found beside src (settings.default_dictionary).
        shutil.copytree(ROOT / "dictionaries", scratch / "dictionaries")
        for target in targets:
            count, survivors = check(target, args.limit, scratch)
            totals.append((target.name, count, len(survivors)))
    print("\ntarget          mutants  killed  survived")
    for name, count, survived in totals:
        print(f"{name:14s} {count:8d} {count - survived:7d} {survived:9d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
