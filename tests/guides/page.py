"""Follow a docs page to the letter: read its console blocks, run each ``$`` line in
bash as printed (one shell state carried from line to line, as in a terminal), and
compare the output with the lines the page shows under it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: What changes from run to run, each matched by its shape: order refs, dates, times.
VOLATILE = [re.compile(p) for p in (r"[A-Z]+-[0-9A-Z]{5}-[0-9A-Z]{5}", r"\d{4}-\d\d-\d\d", r"\d\d:\d\d:\d\d")]
#: Django's shell says how many names it imported; their number follows INSTALLED_APPS.
AUTO_IMPORTS = re.compile(r"^\d+ (objects? imported automatically .*)$")


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)


def console_blocks(rst: Path) -> list[list[Command]]:
    """The ``.. code-block:: console`` blocks of ``rst``, in order."""
    blocks: list[list[Command]] = []
    lines = rst.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != ".. code-block:: console":
            i += 1
            continue
        indent = len(lines[i]) - len(lines[i].lstrip()) + 3
        i += 1
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" " * indent)):
            body.append(lines[i][indent:])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        block: list[Command] = []
        for text in body:
            if text.startswith("$ "):
                block.append(Command(text[2:]))
            elif block and not block[-1].expected and block[-1].line.endswith("\\"):
                block[-1].line += "\n" + text  # a command continued on the next line
            else:
                block[-1].expected.append(text)
        blocks.append(block)
    return blocks


def _token_matches(expected: str, actual: str, volatile: Sequence[re.Pattern[str]] = ()) -> bool:
    if expected == actual:
        return True
    return any(p.fullmatch(expected) and p.fullmatch(actual) for p in (*VOLATILE, *volatile))


def same_output(expected: list[str], actual: str, volatile: Sequence[re.Pattern[str]] = ()) -> bool:
    """``actual`` is what the page shows, line by line and word by word (tabs and runs of
    spaces alike), volatile words aside (``volatile``: more shapes of those, for one page)."""
    got = actual.rstrip("\n").splitlines()
    if len(got) != len(expected):
        return False
    for want, have in zip(expected, got, strict=True):
        want_auto, have_auto = AUTO_IMPORTS.match(want.strip()), AUTO_IMPORTS.match(have.strip())
        if want_auto or have_auto:
            if not (want_auto and have_auto and want_auto.group(1) == have_auto.group(1)):
                return False
            continue
        w, h = want.split(), have.split()
        if len(w) != len(h) or not all(_token_matches(a, b, volatile) for a, b in zip(w, h, strict=True)):
            return False
    return True


@dataclass
class Shell:
    """A terminal in ``cwd``: exported variables (``export``, ``. .venv/bin/activate``)
    carry over from one line to the next."""

    cwd: Path
    env: dict[str, str]
    #: Where the exports are kept between lines (default: ``cwd``).
    state_dir: Path | None = None

    @property
    def state(self) -> Path:
        return (self.state_dir or self.cwd) / ".shell-state"

    def _script(self, line: str, keep_state: bool) -> str:
        script = f'if [ -f "{self.state}" ]; then . "{self.state}"; fi\n{line}\n'
        if keep_state:
            script += f'status=$?\nexport -p > "{self.state}"\nexit $status\n'
        return script

    def run(self, line: str, *, check: bool = True, timeout: float = 300,
            stderr: bool = False) -> subprocess.CompletedProcess[str]:
        """``stderr``: into ``stdout``, interleaved as a terminal shows them."""
        result = subprocess.run(
            ["bash", "-c", self._script(line, True)], cwd=self.cwd, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT if stderr else subprocess.PIPE,
            text=True, timeout=timeout,
        )
        if check and result.returncode:
            raise AssertionError(f"$ {line}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def variable(self, name: str) -> str:
        return self.run(f'printf %s "${name}"').stdout

    def expect(self, command: Command, *, stderr: bool = False, timeout: float = 300,
               volatile: Sequence[re.Pattern[str]] = (), shown: Callable[[str], str] = str) -> str:
        """Run ``command`` as printed; its output must be what the page shows (when it
        shows any). ``stderr``: the page shows what the command writes there too, as
        for ``manage.py check``, which reports warnings on stderr. ``shown``: the output
        as the page would show it (the test's own database name or port put back to the
        page's)."""
        out = shown(self.run(command.line, stderr=stderr, timeout=timeout).stdout)
        if command.expected:
            assert same_output(command.expected, out, volatile), (
                f"$ {command.line}\n--- the page shows:\n" + "\n".join(command.expected) + f"\n--- got:\n{out}"
            )
        return out

    @contextlib.contextmanager
    def background(self, line: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
        """``line`` running in its own process group (a server, a worker) until the block ends."""
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", self._script("exec " + line, False)], cwd=self.cwd, env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            yield process
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
