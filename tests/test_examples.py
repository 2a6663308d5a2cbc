"""Every shell example of the README and of the book's pages runs as written.

The fenced shell blocks (bash, sh, shell, console) of README.md and of every page under
book/ are cut into commands (continuation lines joined, comments dropped, ``NAME=VALUE``
prefixes kept as the command's environment). Each command that calls the project is
checked without computing anything:

- ``scripts/sweep.py ...``: run with ``--dry-run`` (or as written when it asks for
  ``--help``), which resolves the notebook, checks every ``-p NAME VALUE`` against the
  notebook's parameters cell and its validation cell, and checks the executor;
- another ``scripts/*.py``: the script exists and its ``--help`` knows every option
  and choice the example uses;
- ``papermill NOTEBOOK OUTPUT ...``: the notebook and ``--cwd`` exist, the output lands
  outside the repository (a rerun adds no file to it), and the ``-p`` parameters pass
  the same checks as the sweep's dry run;
- ``make TARGET``: the Makefile has the target (``make book`` and the like cannot be
  dry-run; ``make -n`` would still run the recursive ``$(MAKE)`` lines);
- ``BISLS_EXECUTOR=...``: a valid executor specification.

The examples printed by ``scripts/sweep.py --help`` are checked the same way, and every
repository path the help names must exist.
"""

from __future__ import annotations

import importlib.abc
import os
import re
import runpy
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts import sweep  # noqa: E402

PAGES = [ROOT / "README.md", *sorted((ROOT / "book").rglob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell", "console", "shell-session", "zsh"}
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})\s*(?:\{(?:code-block|code|sourcecode)\}\s*)?([\w-]*)")
CONTROL = {"&&", "||", ";", "|", "&"}


@dataclass
class Example:
    where: str  # page:line
    text: str  # the command as the page shows it (continuations joined)
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        prog = Path(self.argv[0]).name
        if prog in ("python", "python3") or re.fullmatch(r"python3\.\d+", prog):
            return "script" if len(self.argv) > 1 and self.argv[1].endswith(".py") else "python"
        if self.argv[0].endswith(".py"):
            return "script"
        if prog in ("papermill", "make"):
            return prog
        return "other"

    @property
    def script(self) -> tuple[str, list[str]]:
        """(the script's path, its arguments) of a ``script`` example."""
        i = 0 if self.argv[0].endswith(".py") else 1
        return self.argv[i], self.argv[i + 1:]


# --------------------------------------------------------------------------- extraction
def shell_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """``(first line number, language, lines)`` of the fenced shell blocks of a page."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        if lang in SHELL_LANGS:
            body = [ln for ln in lines[i + 1:j]]
            while body and body[0].lstrip().startswith(":"):  # MyST directive options
                body = body[1:]
            blocks.append((i + 2, lang, body))
        i = j + 1
    return blocks


def commands(lines: list[str], first: int, lang: str) -> list[tuple[int, str]]:
    """``(line number, command)`` of a block's lines: continuations joined, prompts of
    a console block stripped (its other lines are output), blank and comment lines dropped."""
    out, i = [], 0
    while i < len(lines):
        line, n = lines[i], first + i
        i += 1
        if lang == "console":
            if not re.match(r"^\s*[$%] ", line):
                continue
            line = re.sub(r"^\s*[$%] ", "", line)
        while line.rstrip().endswith("\\") and i < len(lines):
            line = line.rstrip()[:-1] + " " + re.sub(r"^\s*(?:> )?", "", lines[i])
            i += 1
        if line.strip() and not line.strip().startswith("#"):
            out.append((n, line.strip()))
    return out


def split_command(line: str) -> list[tuple[dict[str, str], list[str]]]:
    """The simple commands of a shell line: ``(environment prefix, argv)`` each."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    simple, current = [], []
    for tok in tokens + [";"]:
        if tok in CONTROL:
            if current:
                simple.append(current)
            current = []
        else:
            current.append(os.path.expanduser(tok) if tok.startswith("~/") else tok)
    out = []
    for argv in simple:
        env = {}
        while argv and re.fullmatch(r"[A-Za-z_]\w*=.*", argv[0]):
            key, _, value = argv.pop(0).partition("=")
            env[key] = value
        if argv:
            out.append((env, argv))
    return out


def examples_of_text(text: str, name: str) -> list[Example]:
    found = []
    for first, lang, body in shell_blocks(text):
        for n, line in commands(body, first, lang):
            for env, argv in split_command(line):
                found.append(Example(f"{name}:{n}", line, argv, env))
    return found


def page_examples() -> list[Example]:
    return [ex for page in PAGES
            for ex in examples_of_text(page.read_text(), str(page.relative_to(ROOT)))]


def help_text(capsys=None) -> str:
    with pytest.raises(SystemExit) as done:
        sweep.main(["--help"])
    assert done.value.code == 0
    return capsys.readouterr().out if capsys else ""


def help_examples(text: str) -> list[Example]:
    """The example commands of ``sweep.py --help`` (its indented lines)."""
    all_lines = text.splitlines()
    start = next(i for i, ln in enumerate(all_lines) if ln.startswith("    # "))
    end = next((i for i in range(start, len(all_lines)) if not all_lines[i].startswith("    ")),
               len(all_lines))
    lines = all_lines[start:end]
    return examples_of_text("```bash\n" + "\n".join(lines) + "\n```\n", "sweep.py --help")


# --------------------------------------------------------------------------- checks
def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.M))


def check_env(ex: Example) -> None:
    if "BISLS_EXECUTOR" in ex.env:
        sweep.describe_spec(ex.env["BISLS_EXECUTOR"])


def check_sweep(ex: Example, capsys, monkeypatch) -> None:
    _, args = ex.script
    for key, value in ex.env.items():
        monkeypatch.setenv(key, value)
    wants_help = "--help" in args or "-h" in args
    argv = args if wants_help or "--dry-run" in args else [*args, "--dry-run"]
    capsys.readouterr()
    try:
        sweep.main(argv)
    except SystemExit as done:
        err = capsys.readouterr().err
        if done.code != 0:
            last = err.strip().splitlines()[-1] if err.strip() else "(no message)"
            raise AssertionError(f"exit {done.code}: {last}") from None
        return
    out = capsys.readouterr().out
    assert "dry run, nothing computed" in out, out


def check_script(ex: Example) -> None:
    script, args = ex.script
    path = ROOT / script
    assert path.is_file(), f"no script {script}"
    proc = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, f"{script} --help failed: {proc.stderr[-500:]}"
    helptext = proc.stdout
    choices = {opt: set(c.split(",")) for opt, c in re.findall(r"(--[\w-]+) \{([^}]*)\}", helptext)}
    usage = helptext.split("\n\n")[0]
    modes = [m.group(1).split(",") for m in re.finditer(r"\{([^}]*)\}", usage)
             if not usage[:m.start()].split()[-1].lstrip("[").startswith("-")]
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            opt = arg.split("=")[0]
            assert opt in helptext, f"{script} has no option {opt}"
            if "=" in arg:
                value = arg.partition("=")[2]
            else:
                value = args[i + 1] if i + 1 < len(args) else None
            if opt in choices and value is not None:
                assert value in choices[opt], (
                    f"{script} {opt} takes one of {sorted(choices[opt])}, not {value!r}")
    if args and not args[0].startswith("-") and modes:
        assert args[0] in modes[0], f"{script} has no mode {args[0]!r}; its modes are {modes[0]}"


PAPERMILL_TWO = {"-p", "--parameters", "-r", "--parameters_raw"}
PAPERMILL_ONE = {"-f", "--parameters_file", "-y", "--parameters_yaml", "-b", "--parameters_base64",
                 "-k", "--kernel", "-l", "--language", "--cwd", "--engine", "--log-level",
                 "--start-timeout", "--execution-timeout", "--inject-paths", "-i"}


def check_papermill(ex: Example) -> None:
    args, positional, params, cwd = ex.argv[1:], [], {}, None
    i = 0
    while i < len(args):
        a = args[i]
        if a in PAPERMILL_TWO:
            assert i + 2 < len(args), f"{a} takes NAME VALUE"
            name, value = args[i + 1], args[i + 2]
            raw = a in ("-r", "--parameters_raw")
            params[name] = value if raw else sweep.papermill_value(value)
            i += 3
        elif a in PAPERMILL_ONE:
            assert a not in ("-f", "--parameters_file", "-y", "--parameters_yaml", "-b",
                             "--parameters_base64"), f"{a}: not checked here, say it with -p"
            if a == "--cwd":
                cwd = args[i + 1]
            i += 2
        elif a.startswith("-"):
            i += 1  # a flag (--no-progress-bar, --log-output, ...)
        else:
            positional.append(a)
            i += 1
    assert len(positional) == 2, f"papermill takes INPUT OUTPUT, got {positional}"
    src, dst = (ROOT / positional[0]), Path(positional[1])
    assert src.is_file() and src.suffix == ".ipynb", f"no notebook {positional[0]}"
    if cwd is not None:
        assert (ROOT / cwd).is_dir(), f"no folder {cwd} for --cwd"
    dst = dst if dst.is_absolute() else ROOT / dst
    inside = ROOT in dst.resolve().parents
    assert not inside or (ROOT / ".scratch") in dst.resolve().parents, (
        f"the executed copy {positional[1]} would land in the repository "
        "(a new file in git status)")
    sweep.plan_notebook(src, params)


def check_make(ex: Example) -> None:
    targets = [a for a in ex.argv[1:] if not a.startswith("-") and "=" not in a] or ["help"]
    missing = [t for t in targets if t not in makefile_targets()]
    assert not missing, f"the Makefile has no target {missing}"


def check(ex: Example, capsys, monkeypatch) -> None:
    check_env(ex)
    kind = ex.kind
    if kind == "script" and Path(ex.script[0]).name == "sweep.py":
        assert (ROOT / ex.script[0]).is_file(), f"no script {ex.script[0]}"
        check_sweep(ex, capsys, monkeypatch)
    elif kind == "script":
        check_script(ex)
    elif kind == "papermill":
        check_papermill(ex)
    elif kind == "make":
        check_make(ex)
    # other commands (pip, conda, dask scheduler, ...) are not the project's


# --------------------------------------------------------------------------- tests
EXAMPLES = [ex for ex in page_examples() if ex.kind != "other"]


def test_examples_are_found():
    kinds = [ex.kind for ex in EXAMPLES]
    pages = {ex.where.split(":")[0] for ex in EXAMPLES}
    assert {"README.md", "book/index.md", "book/en/sweeps.md", "book/fr/balayages.md"} <= pages
    sweeps = [ex for ex in EXAMPLES if ex.kind == "script" and ex.script[0].endswith("sweep.py")]
    assert len(sweeps) >= 6 and kinds.count("papermill") >= 2 and kinds.count("make") >= 3, kinds


@pytest.mark.parametrize("ex", EXAMPLES, ids=[f"{ex.where}:{ex.argv[0]}" for ex in EXAMPLES])
def test_example_runs_as_written(ex, capsys, monkeypatch):
    try:
        check(ex, capsys, monkeypatch)
    except (AssertionError, ValueError, TypeError) as err:
        pytest.fail(f"{ex.where}: {ex.text}\n  -> {err}")


def test_help_examples_and_paths(capsys, monkeypatch):
    text = help_text(capsys)
    repo_path = r"(?<![\w.~/-])((?:notebooks|scripts|book|bisls_core|tests)/[\w./-]*\w)"
    paths = set(re.findall(repo_path, text))
    assert paths, "the help names the project's notebooks and scripts"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"sweep.py --help names paths that do not exist: {missing}"
    for module, fn in re.findall(r"\b(scripts\.\w+):(\w+)", text):
        assert hasattr(__import__(module, fromlist=[fn]), fn), f"{module}:{fn}"
    examples = help_examples(text)
    assert len(examples) >= 5
    for ex in examples:
        try:
            check(ex, capsys, monkeypatch)
        except (AssertionError, ValueError, TypeError) as err:
            pytest.fail(f"{ex.where}: {ex.text}\n  -> {err}")


DRIFTED = """
```bash
.venv/bin/python scripts/sweep.py notebooks/fig03_sgd_instability.ipynb -p scale=paper
.venv/bin/python scripts/sweep.py notebooks/fig03_sgd_instability.ipynb -p scale
.venv/bin/python scripts/sweep.py notebooks/fig07_hyperrep_bisls.ipynb -p scale paper
.venv/bin/python scripts/sweep.py notebooks/fig03_sgd_instability.ipynb -p sclae paper
.venv/bin/python scripts/sweep.py notebooks/fig03_sgd_instability.ipynb -p scale huge
.venv/bin/python scripts/sweep.py notebooks/fig03_sgd_instability.ipynb --executor slurm \\
    -p scale paper
.venv/bin/python scripts/sweep.py notebooks/fig03_sgd_instability.ipynb --executor mpi
.venv/bin/papermill notebooks/fig04_quadratics.ipynb /tmp/o.ipynb -p n_runs 0
.venv/bin/papermill notebooks/fig04_quadratics.ipynb /tmp/o.ipynb -p batch 100
.venv/bin/papermill notebooks/fig04_quadratic.ipynb /tmp/o.ipynb -p scale cpu
.venv/bin/papermill notebooks/fig04_quadratics.ipynb out.ipynb -p scale cpu
.venv/bin/papermill notebooks/fig04_quadratics.ipynb /tmp/o.ipynb --cwd notebook
make paperr
BISLS_EXECUTOR=proces:8 make paper
BISLS_EXECUTOR=process:0 make paper
.venv/bin/python scripts/run_notebooks.py results --scale huge
.venv/bin/python scripts/run_notebooks.py result --scale cpu
.venv/bin/python scripts/run_notebooks.py results --scales cpu
.venv/bin/python scripts/no_such_script.py --help
```
"""


def test_a_drifted_example_fails(capsys, monkeypatch):
    """Each command above is one drift (a renamed notebook, a misspelt parameter, the
    old ``-p NAME=VALUE``, a missing target...): the check must reject every one."""
    drifted = examples_of_text(DRIFTED, "drift")
    starts = [ln for ln in DRIFTED.splitlines() if ln and not ln.startswith((" ", "`"))]
    assert len(drifted) == len(starts)
    passed = []
    for ex in drifted:
        try:
            check(ex, capsys, monkeypatch)
        except (AssertionError, ValueError, TypeError):
            continue
        passed.append(ex.text)
    assert not passed, f"drifted examples not caught: {passed}"


def test_extraction_joins_lines_and_keeps_the_environment():
    text = ("Some prose.\n\n```console\n$ BISLS_EXECUTOR=process:8 make paper  # a comment\n"
            "output line\n$ .venv/bin/python scripts/sweep.py x.ipynb \\\n"
            ">     -p scale paper && make book\n```\n\n```python\nmake = 1\n```\n")
    got = [(ex.env, ex.argv) for ex in examples_of_text(text, "t")]
    assert got == [({"BISLS_EXECUTOR": "process:8"}, ["make", "paper"]),
                   ({}, [".venv/bin/python", "scripts/sweep.py", "x.ipynb",
                         "-p", "scale", "paper"]),
                   ({}, ["make", "book"])]


CLUSTER_PACKAGES = ("dask", "distributed", "submitit", "papermill")


class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in CLUSTER_PACKAGES:
            raise ImportError(f"{name} is blocked: --dry-run must not need it")


def test_dry_run_needs_no_cluster_package(capsys, monkeypatch):
    """The cluster examples dry-run, run as the script, with dask, distributed,
    submitit and papermill impossible to import (and no cluster to reach)."""
    for name in [m for m in sys.modules if m.split(".")[0] in CLUSTER_PACKAGES]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Blocked(), *sys.meta_path])
    monkeypatch.delenv("BISLS_EXECUTOR", raising=False)
    runs = [
        ["notebooks/fig03_sgd_instability.ipynb", "--executor", "dask", "--scheduler",
         "tcp://HOST:8786", "-p", "scale", "paper", "-p", "device", "auto", "--dry-run"],
        ["notebooks/fig03_sgd_instability.ipynb", "--executor", "slurm", "--folder",
         "~/submitit-logs", "--partition", "gpu", "--timeout-min", "60", "--slurm",
         "gpus_per_node=1", "-p", "scale", "paper", "-p", "device", "auto", "--dry-run"],
        ["notebooks/fig03_sgd_instability.ipynb", "--executor", "dask", "--dry-run"],
    ]
    capsys.readouterr()
    for argv in runs:
        monkeypatch.setattr(sys, "argv", [str(ROOT / "scripts" / "sweep.py"), *argv])
        runpy.run_path(str(ROOT / "scripts" / "sweep.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("dry run, nothing computed") == 3, out
    assert "tcp://HOST:8786" in out and "partition=gpu" in out
    assert "runs       5 per configuration" in out  # the paper preset's run count
    assert not [m for m in sys.modules if m.split(".")[0] in CLUSTER_PACKAGES]


def test_parameters_parse_as_papermill():
    from papermill.cli import _resolve_type

    for text in ("paper", "5", "-2", "0.5", "1e-3", "True", "False", "None", "inf", "cuda"):
        assert sweep.papermill_value(text) == _resolve_type(text)
        assert type(sweep.papermill_value(text)) is type(_resolve_type(text))


def test_grid_scale_defaults_to_the_book_scale(capsys, monkeypatch):
    """``sweep.py --grid`` without ``--scale`` runs at the book's scale."""
    for scale in ("smoke", "cpu"):
        monkeypatch.setenv("BISLS_BOOK_SCALE", scale)
        capsys.readouterr()
        sweep.main(["--grid", "scripts.sweep:demo_grid", "--dry-run"])
        lines = capsys.readouterr().out.splitlines()
        assert f"scale      {scale}" in lines, lines
