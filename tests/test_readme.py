"""The README runs as written: every command and snippet, and the output it shows.

The README's fenced blocks, in order, from a scratch folder holding a copy of ``sweeps/``
and ``docs/`` (so that every output lands there, under ``out/``, and ``docs/`` is left as it
was):

- ``python``: run in one namespace shared by every python block (like a notebook); when the
  next block is a plain one (no language, not starting with ``$``) it is what the snippet
  prints, compared line by line.
- a plain block starting with ``$ rooflax …``: the command (``\\`` continues it) and the
  lines it prints (its ``note:`` lines, then standard output), compared.
- ``bash``: every ``rooflax`` command runs in-process; ``pip install -e .`` is taken as done
  and ``bash .ci/run`` is this very suite; anything else needs a directive.
- ``toml``, ``sql``, ``text``: shown, not run (``text``: the command-line reference, checked
  against ``--help`` below: the same subcommands, and each with the same flags and arguments).

Directives, HTML comments on the lines right before a block (invisible on GitHub):
``<!-- readme-test: skip REASON -->`` (a block that cannot run here: a GPU, a cluster, a
benchmark) and ``<!-- readme-test: replace OLD => NEW -->`` (run the block with OLD replaced:
a smaller grid for a slow example; its output is then not compared).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from rooflax.cli.commands import main

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!-- readme-test: (skip|replace) (.*?) -->\s*$")


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None = None
    replace: list[tuple[str, str]] = field(default_factory=list)

    def source(self) -> str:
        text = self.text
        for old, new in self.replace:
            assert old in text, f"README line {self.line}: replace {old!r}: not in the block"
            text = text.replace(old, new)
        return text


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with the directives right before each."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        block = Block(i + 1, fence[1], "\n".join(lines[i + 1 : end]))
        j = i - 1
        while j >= 0 and _DIRECTIVE.match(lines[j]):
            kind, arg = _DIRECTIVE.match(lines[j]).groups()
            if kind == "skip":
                block.skip = arg
            else:
                old, sep, new = arg.partition(" => ")
                assert sep, f"README line {j + 1}: replace needs 'OLD => NEW'"
                block.replace.insert(0, (old, new))
            j -= 1
        out.append(block)
        i = end + 1
    return out


def commands(text: str) -> list[str]:
    """The commands of a shell block: ``\\`` continuations joined, comments dropped, ``&&`` chains split."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            out.append(shlex.join(words[:cut]))
            words = words[cut + 1 :]
    return out


def run_command(command: str, where: str) -> str:
    """Run one shell command of the README in-process: its ``note:`` lines (standard error),
    then its standard output (size estimates and progress, on standard error, vary)."""
    words = shlex.split(command)
    if words[:3] == ["pip", "install", "-e"] or words == ["bash", ".ci/run"]:
        return ""  # the package is installed; .ci/run is this suite
    assert words[0] == "rooflax", f"{where}: {command!r} is not a rooflax command; mark the block with a directive"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(words[1:])
    assert status == 0, f"{where}: {command!r} exited {status}: {err.getvalue()}"
    notes = "".join(line for line in err.getvalue().splitlines(keepends=True) if line.startswith("note: "))
    return notes + out.getvalue()


def same_text(got: str, shown: str, where: str) -> None:
    got_lines = [line.rstrip() for line in got.rstrip().splitlines()]
    shown_lines = [line.rstrip() for line in shown.rstrip().splitlines()]
    assert got_lines == shown_lines, f"{where}: printed\n" + "\n".join(got_lines)


def test_readme_blocks_are_all_understood():
    """Every block is of a kind the runner knows, and a directive never hides an output comparison."""
    found = blocks(README.read_text())
    assert len(found) > 10
    for block in found:
        assert block.lang in ("", "python", "bash", "toml", "sql", "text"), f"README line {block.line}: {block.lang!r}"


def run_block(block: Block, namespace: dict, printed: str | None) -> str | None:
    """Run one README block (comparing what it prints where the README shows it); what a python block printed."""
    where = f"README line {block.line}"
    if block.lang == "python":
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block.source(), where, "exec"), namespace)  # the README's own code
        assert not plt.get_fignums(), f"{where}: the snippet left pyplot figures open"
        return None if block.replace else out.getvalue()
    if block.lang == "" and block.text.startswith("$ "):
        head, _, shown = block.source().partition("\n")
        lines = [head]
        while lines[-1].endswith("\\"):
            head, _, shown = shown.partition("\n")
            lines.append(head)
        got = run_command(" ".join(line.rstrip("\\").strip() for line in lines).removeprefix("$ "), where)
        if not block.replace:
            same_text(got, shown, where)
    elif block.lang == "":
        assert printed is not None, f"{where}: an output block after no python block that printed it"
        same_text(printed, block.text, where)
    elif block.lang == "bash":
        for command in commands(block.source()):
            run_command(command, where)
    return None


@pytest.mark.slow
def test_readme_runs_as_written(tmp_path, monkeypatch):
    """Every block in order; then again each that overwrites its outputs (a second run must work as well)."""
    shutil.copytree(ROOT / "sweeps", tmp_path / "sweeps")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")  # a copy: an example that writes into docs/ is caught below
    docs = {p.name: p.read_bytes() for p in (tmp_path / "docs").iterdir()}
    monkeypatch.chdir(tmp_path)
    found = [block for block in blocks(README.read_text()) if not block.skip]
    namespace: dict = {"__name__": "readme"}
    printed: str | None = None  # what the last python block printed, for the block after it
    for block in found:
        printed = run_block(block, namespace, printed)
    again = [block for block in found if "overwrite" in block.text]
    for block in again:
        run_block(block, namespace, None)
    assert len(found) > 15 and len(again) >= 4
    assert (tmp_path / "out").is_dir()  # the examples write under out/
    assert {p.name: p.read_bytes() for p in (tmp_path / "docs").iterdir()} == docs  # and never into docs/


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pip install -e . && rooflax sweep -o out/x   # a comment", ["pip install -e .", "rooflax sweep -o out/x"]),
        ("rooflax best-k a.toml --k 1 \\\n    --plot out/c.png", ["rooflax best-k a.toml --k 1 --plot out/c.png"]),
    ],
)
def test_shell_blocks_split_into_commands(text, expected):
    assert commands(text) == expected


def test_directives_attach_to_the_next_block():
    text = (
        "<!-- readme-test: skip needs a GPU -->\n```bash\nrooflax validate\n```\n"
        "<!-- readme-test: replace 1,2,4 => 1 -->\n<!-- readme-test: replace a => b -->\n```python\n"
        "x = [1,2,4], 'a'\n```\n"
    )
    first, second = blocks(text)
    assert first.skip == "needs a GPU" and first.replace == []
    assert second.replace == [("1,2,4", "1"), ("a", "b")] and second.source() == "x = [1], 'b'"


#: A flag in the README's reference: ``-o``, ``--seq-len`` (not the ``-vicuna`` of ``medusa-vicuna-7b``).
_FLAG = re.compile(r"(?<![\w-])(--?[a-z][a-z0-9-]*)")


def cli_reference(text: str) -> dict[str, str]:
    """Each subcommand's synopsis in the README's ``Command line`` block (its ``text`` block), by name."""
    section = text.split("\n## Command line\n", 1)[1]
    (block,) = [b for b in blocks(section)[:1] if b.lang == "text"]
    synopsis: dict[str, str] = {}
    for line in block.text.splitlines():
        if line.startswith("rooflax "):
            name, _, rest = line.removeprefix("rooflax ").partition(" ")
            synopsis[name] = rest.strip()
        else:  # a continuation, indented under its command
            assert line.startswith(" "), f"README Command line: {line!r} is neither a command nor a continuation"
            synopsis[name] += " " + line.strip()
    return synopsis


def help_flags(parser) -> dict[str, tuple[set[str], list[str]]]:
    """Each subcommand's flags and the names of its positional arguments, as ``--help`` lists them."""
    out = {}
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        flags = {f for action in sub._actions for f in action.option_strings if f not in ("-h", "--help")}
        positionals = [action.metavar or action.dest.upper() for action in sub._actions if not action.option_strings]
        out[name] = flags, positionals
    return out


def test_cli_reference_matches_help():
    """The README's command-line reference names every subcommand, flag and argument ``--help`` has, and no other."""
    from rooflax.cli.commands import _parser

    synopsis = cli_reference(README.read_text())
    actual = help_flags(_parser())
    assert set(synopsis) == set(actual), (
        f"README lacks {set(actual) - set(synopsis)}, --help lacks {set(synopsis) - set(actual)}"
    )
    for name, (flags, positionals) in actual.items():
        text = synopsis[name]
        if text.startswith("(the same)"):  # best-k: speculate's flags, then its own
            text = synopsis["speculate"] + text.removeprefix("(the same)")
        listed = set(_FLAG.findall(text))
        assert listed == flags, (
            f"rooflax {name}: README lacks {sorted(flags - listed)}, --help lacks {sorted(listed - flags)}"
        )
        for positional in positionals:
            assert re.search(rf"\b{positional}\b", text), f"rooflax {name}: README lacks the argument {positional}"
