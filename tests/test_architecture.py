"""The house's rules, read from the source: imports run one way, and functions stay readable.

Every module of the ``harness`` package is parsed with ``ast``; every import counts,
at module level or inside a function, absolute or relative. ``from harness.x import y``
means module ``harness.x.y`` when that is a module, else module ``harness.x``.

Layers, lowest first (a module may import its own layer's subpackage and any lower layer):

0. foundation: ``harness.errors``, ``harness.classes``, ``harness.atomic``, ``harness.locking``,
   ``harness.paths``, ``harness.protocol``
1. ``harness.components.*`` and ``harness.pictures.*`` (neither imports the other)
2. ``harness.data.*``
3. ``harness.metric.*``
4. ``harness.results.*``
5. ``harness.engine.*``
6. ``harness.inference.*`` (a finished run's model: predict, export)
7. ``harness.runs.*``
8. ``harness.studies.*`` (built on runs: sweep, tune)
9. ``harness.cli.*``

Above them the public faces: ``harness`` (its ``__init__``), ``harness.testing`` and
``harness.__main__`` may import any layer; only ``harness.__main__`` may import
``harness.cli``, and no layer imports a face. A module that is in no layer fails until
it is placed here.

The test tree follows a rule of its own: a test module imports what it shares with others
from ``tests/helpers.py`` (or takes it as a fixture from a ``conftest.py``), never from
another test module.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import harness

ROOT = Path(harness.__file__).resolve().parent

FOUNDATION = (
    "harness.errors",
    "harness.classes",
    "harness.atomic",
    "harness.locking",
    "harness.paths",
    "harness.protocol",
)
#: Subpackage -> layer.
SUBPACKAGES = {
    "harness.components": 1,
    "harness.pictures": 1,
    "harness.data": 2,
    "harness.metric": 3,
    "harness.results": 4,
    "harness.engine": 5,
    "harness.inference": 6,
    "harness.runs": 7,
    "harness.studies": 8,
    "harness.cli": 9,
}
#: The command line's (layer, group).
CLI = (9, "harness.cli")
FACES = ("harness", "harness.testing", "harness.__main__")
FACE_LAYER = 10
#: The only modules outside ``harness.cli`` that may import it.
CLI_IMPORTERS = ("harness.__main__",)
#: Functions longer than this many lines (docstring not counted) fail.
MAX_FUNCTION_LINES = 100
#: Only the command line draws on a terminal.
UI_LIBRARIES = ("rich",)


@dataclass(frozen=True)
class Import:
    """``source`` imports ``target`` (a name as written, resolved to an absolute module)."""

    source: str
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.source} (line {self.line}) imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {
    module_name(path): path
    for path in sorted(ROOT.rglob("*.py"))
    if "__pycache__" not in path.parts
}
TREES: dict[str, ast.Module] = {
    name: ast.parse(path.read_text(), filename=str(path)) for name, path in MODULES.items()
}


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def unit(module: str) -> tuple[int, str] | None:
    """(layer, group) of a module: same layer and different group may not import each other."""
    if module in FACES:
        return FACE_LAYER, "faces"
    if module in FOUNDATION:
        return 0, "foundation"
    for package, layer in SUBPACKAGES.items():
        if module == package or module.startswith(package + "."):
            return layer, package
    return None


def raw_imports(tree: ast.Module, module: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in the tree, at any depth."""
    package = module if is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                base_name = ".".join([*base, node.module] if node.module else base)
            else:
                base_name = node.module or ""
            targets = (f"{base_name}.{alias.name}" for alias in node.names)
            # ``from a import b, c``: one import of ``a``, plus each of b, c that is a module
            for target in dict.fromkeys(t if t in MODULES else base_name for t in targets):
                yield node.lineno, target


def resolve(target: str) -> str | None:
    """The harness module an import name refers to (the longest known prefix), or None."""
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in MODULES:
            return name
        parts.pop()
    return None


def harness_imports() -> list[Import]:
    found = []
    for module, tree in TREES.items():
        for line, target in raw_imports(tree, module):
            if target == "harness" or target.startswith("harness."):
                resolved = resolve(target)
                if resolved is not None and resolved != module:
                    found.append(Import(module, line, resolved))
    return found


IMPORTS = harness_imports()


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [cycle_through(component, edges) for component in components]


def cycle_through(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside it."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges.get(node, ()) & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {component}")  # unreachable for an SCC


def test_the_import_reader_resolves_every_form() -> None:
    code = (
        "import harness.errors, numpy\n"
        "from harness import protocol, hookimpl\n"
        "from . import images\n"
        "from .images import anything\n"
        "from ..metric import dice\n"
        "def f():\n"
        "    from harness.inference.predict import predict\n"
        "    import rich.progress\n"
    )
    found = list(raw_imports(ast.parse(code), "harness.data.cache"))
    assert found == [
        (1, "harness.errors"),
        (1, "numpy"),
        (2, "harness.protocol"),
        (2, "harness"),
        (3, "harness.data.images"),
        (4, "harness.data.images"),
        (5, "harness.metric.dice"),
        (7, "harness.inference.predict"),
        (8, "rich.progress"),
    ]
    package = list(
        raw_imports(ast.parse("from . import cache\nfrom .. import errors"), "harness.data")
    )
    assert package == [(1, "harness.data.cache"), (2, "harness.errors")]


def test_every_module_is_parsed_and_found() -> None:
    assert {"harness", "harness.errors", "harness.cli", "harness.components.registry"} <= set(
        MODULES
    )
    assert any(i.source == "harness.cli" for i in IMPORTS)


def test_every_module_belongs_to_a_layer() -> None:
    homeless = [module for module in MODULES if unit(module) is None]
    assert not homeless, (
        f"modules in no layer: {', '.join(homeless)}; place each in tests/test_architecture.py"
    )


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        edges.setdefault(imp.source, set()).add(imp.target)
    found = cycles(edges)
    lines = {(imp.source, imp.target): imp.line for imp in IMPORTS}
    described = [
        " -> ".join(f"{a} (line {lines[a, b]})" for a, b in zip(cycle, cycle[1:], strict=False))
        + f" -> {cycle[-1]}"
        for cycle in found
    ]
    assert not found, "import cycles:\n" + "\n".join(described)


def test_imports_run_down_the_layers() -> None:
    wrong = []
    for imp in IMPORTS:
        source, target = unit(imp.source), unit(imp.target)
        if source is None or target is None:
            continue  # test_every_module_belongs_to_a_layer names them
        if target[0] > source[0]:
            wrong.append(f"{imp} (layer {source[0]} imports layer {target[0]})")
        elif target[0] == source[0] and target[1] != source[1]:
            wrong.append(f"{imp} (layer {source[0]}: {source[1]} imports {target[1]})")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_only_the_entry_point_imports_the_command_line() -> None:
    wrong = [
        str(imp)
        for imp in IMPORTS
        if unit(imp.target) == CLI and unit(imp.source) != CLI and imp.source not in CLI_IMPORTERS
    ]
    assert not wrong, "imports of harness.cli:\n" + "\n".join(wrong)


def test_only_the_command_line_imports_a_terminal_library() -> None:
    wrong = []
    for module, tree in TREES.items():
        if unit(module) == CLI:
            continue
        for line, target in raw_imports(tree, module):
            if target.partition(".")[0] in UI_LIBRARIES:
                wrong.append(f"{module} (line {line}) imports {target}")
    assert not wrong, "library code draws no UI; only harness.cli may:\n" + "\n".join(wrong)


def function_lengths() -> Iterator[tuple[str, int, str, int]]:
    """(module, line, qualified name, lines without the docstring) for every function."""
    for module, tree in TREES.items():
        yield from _functions(module, tree, "")


def _functions(module: str, node: ast.AST, prefix: str) -> Iterator[tuple[str, int, str, int]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            length = child.end_lineno - child.lineno + 1
            doc = ast.get_docstring(child, clean=False)
            if doc is not None:
                first = child.body[0]
                length -= first.end_lineno - first.lineno + 1
            name = f"{prefix}{child.name}"
            yield module, child.lineno, name, length
            yield from _functions(module, child, f"{name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(module, child, f"{prefix}{child.name}.")
        else:
            yield from _functions(module, child, prefix)


def test_functions_fit_on_a_screen() -> None:
    lengths = list(function_lengths())
    assert any(name == "main" for _, _, name, _ in lengths)
    long = [
        f"{module} (line {line}) {name}: {length} lines"
        for module, line, name, length in lengths
        if length > MAX_FUNCTION_LINES
    ]
    assert not long, (
        f"functions over {MAX_FUNCTION_LINES} lines (docstring not counted):\n" + "\n".join(long)
    )


#: No module of the command line is longer than this (one module per command or group).
MAX_CLI_MODULE_LINES = 300


def test_the_command_line_is_one_module_per_command() -> None:
    cli = {module: path for module, path in MODULES.items() if unit(module) == CLI}
    long = [
        f"{path.relative_to(ROOT.parent)}: {count} lines"
        for path in cli.values()
        if (count := len(path.read_text().splitlines())) > MAX_CLI_MODULE_LINES
    ]
    assert not long, f"command-line modules over {MAX_CLI_MODULE_LINES} lines:\n" + "\n".join(long)
    defined = [
        f"{node.name} (line {node.lineno})"
        for node in ast.walk(TREES["harness.cli"])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    assert not defined, (
        "harness/cli/__init__.py only assembles the commands (each lives in its own module); "
        "it defines: " + ", ".join(defined)
    )


# --- the test tree ---------------------------------------------------------------------

#: The test tree's root (this file's folder).
TESTS = Path(__file__).resolve().parent


def imports_in_test_tree(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute name) for every import in a file of the test tree, at any depth;
    ``from a import b`` gives ``a.b``."""
    package = path.relative_to(TESTS.parent).parent.parts
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            base += [node.module] if node.module else []
            for alias in node.names:
                yield node.lineno, ".".join([*base, alias.name])


def test_no_test_module_imports_another() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert TESTS / "helpers.py" in files
    wrong = [
        f"{path.relative_to(TESTS.parent)} (line {line}) imports {name}"
        for path in files
        for line, name in imports_in_test_tree(path)
        if any(part.startswith("test_") for part in name.split("."))
    ]
    assert not wrong, (
        "test modules import one another; move what they share into tests/helpers.py "
        "(or a conftest.py fixture):\n" + "\n".join(wrong)
    )


#: Functions outside the command line with more parameters than this (``self`` and ``cls``
#: not counted; ``*args`` and ``**kwargs`` counted) fail: they want an object.
MAX_PARAMETERS = 8
#: For now, wide functions of ``harness.runs`` being reshaped elsewhere: (module, qualified
#: name) -> parameters. Temporary: it only ever shrinks, and goes when it is empty.
WIDE_FOR_NOW: dict[tuple[str, str], int] = {}


def parameter_counts() -> Iterator[tuple[str, int, str, int]]:
    """(module, line, qualified name, parameters) for every function outside ``harness.cli``."""
    for module, tree in TREES.items():
        if unit(module) != CLI:
            yield from _parameters(module, tree, "")


def _parameters(module: str, node: ast.AST, prefix: str) -> Iterator[tuple[str, int, str, int]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            args = child.args
            names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
            count = len([n for n in names if n not in ("self", "cls")])
            name = f"{prefix}{child.name}"
            yield module, child.lineno, name, count
            yield from _parameters(module, child, f"{name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _parameters(module, child, f"{prefix}{child.name}.")
        else:
            yield from _parameters(module, child, prefix)


def test_the_parameter_reader_counts_every_kind_of_parameter() -> None:
    code = (
        "def f(a, /, b, *args, c, **kwargs): ...\n"
        "class C:\n"
        "    def m(self, a): ...\n"
        "    @classmethod\n"
        "    def k(cls, a, b=1): ...\n"
    )
    found = [(name, count) for _, _, name, count in _parameters("m", ast.parse(code), "")]
    assert found == [("f", 5), ("C.m", 1), ("C.k", 2)]


def test_no_function_outside_the_command_line_takes_more_than_eight_parameters() -> None:
    counts = {(module, name): (line, count) for module, line, name, count in parameter_counts()}
    assert ("harness.engine.trainer", "train") in counts
    wide = [
        f"{module} (line {line}) {name}: {count} parameters"
        for (module, name), (line, count) in counts.items()
        if count > MAX_PARAMETERS and count > WIDE_FOR_NOW.get((module, name), 0)
    ]
    assert not wide, (
        f"functions over {MAX_PARAMETERS} parameters (group them in an object that names "
        "what they are):\n" + "\n".join(wide)
    )
    stale = [
        f"{module} {name}"
        for (module, name), allowed in WIDE_FOR_NOW.items()
        if counts.get((module, name), (0, 0))[1] < allowed
    ]
    assert not stale, "narrowed or gone; take them off WIDE_FOR_NOW:\n" + "\n".join(stale)


# --- tables are read as data -------------------------------------------------------------

#: What may read a rendered (pipe) table in ``harness.results``, by module or function, and
#: why. Everything else reads a table's JSON twin.
PIPE_READERS = {
    "harness.results.legacy": (
        "tables written before JSON twins existed: placement, `harness compare` and a finished "
        "run's printed row read such a table's markdown, and only when it has no twin"
    ),
    "harness.results.pages._parts": "splits an entry's key (its components joined by |)",
}
#: String methods that take a line apart (or test how it starts) at a given text.
LINE_METHODS = frozenset(
    {"split", "rsplit", "strip", "lstrip", "rstrip", "startswith", "endswith", "partition",
     "rpartition", "find", "index", "count"}
)  # fmt: skip


def _literal_text(node: ast.AST) -> str | None:
    """The text of a string literal, or the literal parts of an f-string; None for others."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return None


def _reads_pipes(node: ast.AST) -> bool:
    """``line.split("|")``, ``line.startswith("| # |")``, ``f"| {x} |" in line`` and the like."""
    call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    if call and node.func.attr in LINE_METHODS:
        texts = [_literal_text(arg) for arg in node.args]
        return any(text is not None and "|" in text for text in texts)
    if isinstance(node, ast.Compare) and any(isinstance(op, ast.In) for op in node.ops):
        text = _literal_text(node.left)
        return text is not None and text.lstrip().startswith("|")
    return False


def pipe_reads(module: str, node: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified function, line) of each place in ``node`` that takes text apart at ``|``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield from pipe_reads(module, child, f"{prefix}{child.name}.")
            continue
        if _reads_pipes(child):
            yield prefix.rstrip(".") or "<module>", child.lineno
        yield from pipe_reads(module, child, prefix)


def test_the_pipe_reader_finds_every_form() -> None:
    code = (
        "def cells(line):\n"
        "    return [c.strip() for c in line.strip().strip('|').split('|')]\n"
        "def header(lines):\n"
        "    return next(x for x in lines if x.startswith('| # |'))\n"
        "def row(lines, label):\n"
        "    return [x for x in lines if f'| {label} |' in x]\n"
        "def fine(text):\n"
        "    return ' | '.join(text.split(','))\n"
    )
    found = [name for name, _ in pipe_reads("m", ast.parse(code))]
    assert found == ["cells", "cells", "header", "row"]


def test_no_results_module_reads_a_rendered_table() -> None:
    found = [
        (module, name, line)
        for module, tree in TREES.items()
        if module.startswith("harness.results")
        for name, line in pipe_reads(module, tree)
    ]
    wrong = [
        f"{module} (line {line}) {name}"
        for module, name, line in found
        if module not in PIPE_READERS and f"{module}.{name}" not in PIPE_READERS
    ]
    assert not wrong, (
        "a table is read from its JSON twin (harness.results.tables), never from its rendered "
        "markdown; only harness.results.legacy reads a table from before twins:\n"
        + "\n".join(wrong)
    )
    used = {module for module, _, _ in found} | {f"{module}.{name}" for module, name, _ in found}
    stale = sorted(set(PIPE_READERS) - used)
    assert not stale, "no longer reads `|`; take it off PIPE_READERS: " + ", ".join(stale)


#: How a verdict is worded: a table's, a page's and the terminal's words for a row against its
#: leader (or best) and for a difference between two tables.
VERDICT_WORDS = ("≈", "below", "leader", "within noise", "noise unknown")
#: Words that never appear in other text: a literal containing one words a verdict.
VERDICT_PHRASES = ("≈", "within noise", "noise unknown")
#: The one module that words verdicts.
VERDICTS = "harness.results.significance"


def _docstrings(tree: ast.Module) -> set[int]:
    nodes = (tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef)))
    return {
        id(node.body[0].value)
        for node in nodes
        if node.body and ast.get_docstring(node, clean=False) is not None
    }


def verdict_literals(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, text) of each string literal (not a docstring) that words a verdict."""
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if id(node) not in docstrings and (
                text.strip() in VERDICT_WORDS or any(p in text for p in VERDICT_PHRASES)
            ):
                yield node.lineno, text


def test_verdicts_are_worded_in_one_module() -> None:
    found = {
        module: [f"line {line}: {text[:40]!r}" for line, text in verdict_literals(tree)]
        for module, tree in TREES.items()
    }
    wording = {module for module, literals in found.items() if literals}
    others = [f"{module} {', '.join(found[module])}" for module in sorted(wording - {VERDICTS})]
    assert not others, (
        f"verdicts are worded in {VERDICTS} alone (its verdict and difference_verdict); "
        "elsewhere:\n" + "\n".join(others)
    )
    words = {text.strip() for _, text in verdict_literals(TREES[VERDICTS])}
    assert set(VERDICT_WORDS) <= words, f"{VERDICTS} lacks some of {VERDICT_WORDS}"


# --- every module has its tests -------------------------------------------------------------

#: A test file that only points to where a module's tests live says so in its docstring's
#: first line: "Tests of harness.x.y live in tests/a/test_b.py[, tests/c/test_d.py]".
POINTER = re.compile(r"^Tests of (harness[\w.]*) live in (.+?)\.?$")


def has_code(path: Path) -> bool:
    """Whether a module holds more than its docstring (a package's ``__init__`` may not)."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def mirrored_test_file(module: str) -> Path:
    """Where a module's tests live: ``harness/a/b.py`` in ``tests/a/test_b.py``; a package
    ``harness/a/b/__init__.py`` in ``tests/a/b/test_b.py``; ``harness`` in
    ``tests/test_harness.py``."""
    parts = module.split(".")[1:]
    if not parts:
        return TESTS / "test_harness.py"
    folder = parts if is_package(module) else parts[:-1]
    return TESTS.joinpath(*folder, f"test_{parts[-1]}.py")


def _tests_in(path: Path) -> int:
    tree = ast.parse(path.read_text(), filename=str(path))
    return sum(
        isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        for node in ast.walk(tree)
    )


def test_every_module_has_its_tests() -> None:
    """Each module with code has its test file at the mirrored path: tests of its own, or one
    line naming the files where they live (each of which exists and holds tests)."""
    wrong = []
    for module, path in MODULES.items():
        if not has_code(path):
            continue
        tests = mirrored_test_file(module)
        if not tests.is_file():
            wrong.append(f"{module}: no {tests.relative_to(TESTS.parent)}")
        elif not _tests_in(tests):
            first = (ast.get_docstring(ast.parse(tests.read_text())) or "").splitlines()[:1]
            found = POINTER.match(first[0]) if first else None
            if found is None or found.group(1) != module:
                wrong.append(
                    f"{tests.relative_to(TESTS.parent)}: no tests, and its first line does not "
                    f"say 'Tests of {module} live in tests/...'"
                )
                continue
            for name in (n.strip(" `") for n in found.group(2).split(",")):
                where = TESTS.parent / name
                if not where.is_file() or not _tests_in(where):
                    wrong.append(f"{tests.relative_to(TESTS.parent)}: {name} holds no tests")
    assert not wrong, "modules without their tests:\n" + "\n".join(sorted(wrong))


def test_the_test_file_rule_reads_pointers() -> None:
    found = POINTER.match("Tests of harness.cli.run live in tests/cli/test_cli.py, tests/x.py.")
    assert found is not None and found.group(1) == "harness.cli.run"
    assert found.group(2) == "tests/cli/test_cli.py, tests/x.py"
    assert mirrored_test_file("harness.cli.run") == TESTS / "cli" / "test_run.py"
    assert mirrored_test_file("harness.cli") == TESTS / "cli" / "test_cli.py"
    assert mirrored_test_file("harness") == TESTS / "test_harness.py"
