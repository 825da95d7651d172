"""The docs cannot rot: every `jaxgen ...` command in README.md, docs/*.md and
reports/README.md still parses, and every link, picture and repository path they name exists.

Commands are found in fenced code blocks (```bash, ```sh, ```console, plain ```), indented
code blocks and inline code spans, also after `$ `, after `VAR=value`, inside `&&` / `;`
chains and across `\\` continuations. Nothing is run; each command is checked against the
real CLI:

* the subcommand is one of jaxgen's argparse parser (`jaxgen.cli`, families' commands
  included);
* every flag is one of that subcommand's options, spelt out (no abbreviation), and a
  concrete value has the option's type; no stray positional argument;
* `--config NAME` (train, bench) and `jaxgen config NAME` name a config file or a shipped
  config; `jaxgen reproduce NAME` names a reproduction;
* every `--config.KEY=VALUE` names a key of that config, resolved with the command's
  `data.name` / `objective.name` / `model.name` (the commands that read a trained run,
  `sample`, `eval`, ..., use the config the same page trained that `--workdir` with, else
  any shipped config that declares the key); concrete values are validated by the config's
  own resolution (`jaxgen.kernel.config.resolve`); an override quoted alone
  (`--config.eval.ode_steps=20`) names a key some shipped config declares.

Synopsis notation is understood: `[...]` optional parts, `a|b` alternatives, `...`
repetition, and placeholders (any upper-case letter, `<name>`, `*`, `path/to/...`: RUN,
W, FILE.npz, CFG, `--config.eval.*`) stand for any value; a placeholder key is checked up
to its first placeholder part (`--config.train.KEY=VALUE`: the group `train`). A command
shown with its error (the next line starts with `jaxgen: error:`) must be rejected.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import importlib
import io
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             ROOT / "reports" / "README.md"]
SHELL_LANGS = {"", "bash", "sh", "shell", "console", "shell-session", "zsh"}
PLACEHOLDER = re.compile(r"[A-Z]|\.\.\.|<|>|\*|^/path/|path/to/")
REPO_DIRS = ("jaxgen", "configs", "examples", "benchmarks", "launch", "tests", "reports",
             "docs")
# dotted names in the docs that are not Python objects
NOT_PYTHON = {"jaxgen.plugins",  # the entry-point group of installed plugins
              "jaxgen.lock"}    # a run folder's lock file


def _placeholder(text: str) -> bool:
    return bool(PLACEHOLDER.search(text))


# ------------------------------------------------------------------ finding commands
@dataclass
class Command:
    where: str             # "README.md:12"
    text: str              # the command as written (one logical line)
    args: list[str]        # the words after `jaxgen`
    expect_error: bool = False
    inline: bool = False   # an inline code span: prose may name a flag without its value


@dataclass
class Doc:
    name: str
    commands: list[Command] = field(default_factory=list)
    prose: str = ""        # the text outside code blocks (code lines blanked, lines kept)
    spans: list[tuple[int, str]] = field(default_factory=list)  # (line, inline code)
    fragments: list[Command] = field(default_factory=list)  # inline `--config.K=V ...`


def _segments(line: str) -> list[list[str]]:
    """The `jaxgen` invocations of one shell line: the words after `jaxgen` of each
    `&&` / `;` / `||` part that runs it."""
    line = re.sub(r"(^|\s)#.*$", "", line)  # a shell comment
    try:
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&")
        lex.whitespace_split, lex.commenters = True, ""
        words = list(lex)
    except ValueError:  # unbalanced quotes: split on blanks
        words = line.split()
    out, part = [], []
    for w in [*words, ";"]:
        if w in (";", "&&", "||", "&", "|"):
            while part and (part[0] == "$" or re.fullmatch(r"[A-Za-z_]\w*=\S*", part[0])):
                part = part[1:]
            if part and part[0] == "jaxgen":
                out.append(part[1:])
            part = []
        else:
            part.append(w)
    return out


def _block_commands(name: str, lines: list[tuple[int, str]]) -> list[Command]:
    logical: list[tuple[int, str]] = []
    pending, start = "", None
    for no, text in lines:
        if start is None:
            start = no
        if text.rstrip().endswith("\\"):
            pending += text.rstrip()[:-1] + " "
            continue
        logical.append((start, pending + text))
        pending, start = "", None
    if pending:
        logical.append((start, pending))
    out = []
    for i, (no, text) in enumerate(logical):
        following = next((t.strip() for _, t in logical[i + 1:] if t.strip()), "")
        for args in _segments(text.strip()):
            out.append(Command(f"{name}:{no}", text.strip(), args,
                               expect_error=following.startswith("jaxgen: error:")))
    return out


def parse_doc(text: str, name: str) -> Doc:
    """The commands of a markdown text, its prose and its inline code spans."""
    doc = Doc(name)
    lines = text.split("\n")
    prose = list(lines)
    fence, lang, block = None, "", []
    indented: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        no = i + 1
        m = re.match(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)", line)
        if fence is None and m:
            fence, lang, block = m.group(1), m.group(2).lower(), []
            prose[i] = ""
            continue
        if fence is not None:
            prose[i] = ""
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                if lang in SHELL_LANGS:
                    doc.commands += _block_commands(name, block)
                fence = None
            else:
                block.append((no, line))
            continue
        previous = lines[i - 1] if i else ""
        if line.startswith("    ") and line.strip() and (not previous.strip() or indented):
            indented.append((no, line))
            prose[i] = ""
            continue
        if indented:
            doc.commands += _block_commands(name, indented)
            indented = []
    if indented:
        doc.commands += _block_commands(name, indented)
    doc.prose = "\n".join(prose)
    for m in re.finditer(r"(?<!`)`([^`]+?)`(?!`)", doc.prose):
        content = m.group(1)
        if "\n\n" in content:
            continue
        no = doc.prose.count("\n", 0, m.start()) + 1
        content = content.replace("\\|", "|").replace("\n", " ").strip()
        doc.spans.append((no, content))
        if re.match(r"^(\$\s+)?jaxgen\s", content) or re.search(r"(&&|;)\s*jaxgen\s", content):
            for args in _segments(content):
                doc.commands.append(Command(f"{name}:{no}", content, args, inline=True))
        elif content.startswith("--config."):
            doc.fragments.append(Command(f"{name}:{no}", content, content.split(), inline=True))
    return doc


# ------------------------------------------------------------------ what jaxgen knows
def _config_module():
    for name in ("jaxgen.kernel.config", "jaxgen.core.config"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("jaxgen's config module (jaxgen.kernel.config) is gone")


@functools.lru_cache(maxsize=None)
def _subparsers() -> dict:
    import argparse

    from jaxgen import cli
    build = getattr(cli, "build_parser", None) or cli._parser
    parser = build()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@functools.lru_cache(maxsize=None)
def jaxgen_list() -> dict[str, list[str]]:
    """`jaxgen list`, by section (configs, objectives, models, datasets, reproductions)."""
    from jaxgen import cli
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["list"]) == 0
    sections, current = {}, None
    for line in out.getvalue().splitlines():
        if not line.startswith(" "):
            current = line.split()[0].rstrip(":")
            sections[current] = []
        elif current:
            sections[current].append(line.split()[0])
    return sections


def _config_path(name: str) -> Path:
    local = ROOT / name
    return local if local.is_file() else _config_module().find_config(name)


@functools.lru_cache(maxsize=None)
def _file_config(path: Path):
    return _config_module().load_config_file(path)


def _leaf_keys(node, prefix: str = "") -> set[str]:
    out = set()
    for k, v in node.items():
        if hasattr(v, "items"):
            out |= _leaf_keys(v, f"{prefix}{k}.")
        else:
            out.add(f"{prefix}{k}")
    return out


@functools.lru_cache(maxsize=None)
def _resolved(path: Path, names: tuple[str, ...] = ()):
    """The config at `path` resolved with its GROUP.name overrides (one
    resolution per config and names: the checks reuse it)."""
    return _config_module().resolve(copy.deepcopy(_file_config(path)), list(names))


@functools.lru_cache(maxsize=None)
def _all_shipped_keys() -> frozenset[str]:
    keys = set()
    for p in _config_module().find_configs():
        keys |= _leaf_keys(_resolved(p))
    return frozenset(keys)


def _text(value) -> str:
    """A resolved value as `--config.KEY=` text its parser reads back."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return repr(tuple(value))
    return str(value)


# ------------------------------------------------------------------ checking one command
def _normalise(args: list[str]) -> list[str]:
    """Synopsis notation out: `[` `]` and `...` dropped, `a|--b` split into `a`, `--b`."""
    out = []
    for a in args:
        a = a.strip("[]")
        if a.endswith("..."):
            a = a[:-3]
        if not a:
            continue
        pieces = a.split("|")
        if len(pieces) > 1 and any(p.startswith("-") for p in pieces[1:]):
            out += [p for p in pieces if p]
        else:
            out.append(a)
    return out


def _unknown_key(key: str, valid, what: str) -> str:
    close = difflib.get_close_matches(key, sorted(valid), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown config key '{key}' {what}{hint}"


def _check_overrides(overrides: list[tuple[str, str | None]], config: Path | None,
                     names: tuple[str, ...]) -> list[str]:
    from jaxgen import JaxgenError
    problems = []
    if config is not None:
        try:
            valid = _leaf_keys(_resolved(config, names))
        except JaxgenError as e:
            return [f"config {config.name} with {list(names)}: {str(e).splitlines()[0]}"]
        what = f"for config {config.relative_to(ROOT) if config.is_relative_to(ROOT) else config}"
    else:
        valid = _all_shipped_keys()
        what = "in any shipped config"
    groups = {k.rsplit(".", i)[0] for k in valid for i in range(1, k.count(".") + 1)}
    concrete = []
    for key, value in overrides:
        parts = key.split(".")
        if any(_placeholder(p) for p in parts):
            prefix = ".".join(parts[:next(i for i, p in enumerate(parts) if _placeholder(p))])
            if prefix and prefix not in groups:
                problems.append(f"unknown config group '{prefix}' {what}")
            continue
        if value is None:
            problems.append(f"--config.{key} has no value")
            continue
        if _is_name_key(key):
            continue  # applied with the config (names), or a placeholder plugin path
        deferred = parts[0] == "model" or parts[:2] == ["optim", "players"]
        if key not in valid and not (deferred and config is not None):
            problems.append(_unknown_key(key, valid, what))
            continue
        if config is not None:
            if _placeholder(value):
                if key not in valid:
                    continue
                node = _resolved(config, names)
                for p in parts:
                    node = node[p]
                value = _text(node)
            concrete.append(f"{key}={value}")
    if config is not None and concrete and not problems:
        try:
            _config_module().resolve(copy.deepcopy(_file_config(config)),
                                     [*names, *concrete])
        except JaxgenError as e:
            problems.append(str(e).splitlines()[0])
    return problems


def _is_name_key(key: str) -> bool:
    """data.name, objective.name, model.name: resolution applies them first."""
    return key in getattr(_config_module(), "NAME_KEYS",
                          ("data.name", "objective.name", "model.name"))


def _names(overrides) -> tuple[str, ...]:
    """The GROUP.name overrides (data.name, objective.name, model.name: they decide which
    other keys exist) that can be applied here: registered names,
    import paths, and plugin files that exist (made absolute); a placeholder is left out."""
    out = []
    for key, value in overrides:
        if not _is_name_key(key) or value is None or _placeholder(value):
            continue
        file = value.split(":")[0]
        if file.endswith(".py"):
            if not (ROOT / file).is_file():
                continue
            value = f"{ROOT / file}{value[len(file):]}"
        out.append(f"{key}={value}")
    return tuple(out)


def check_command(cmd: Command, trained: dict[str, tuple[Path, tuple[str, ...]]]) -> list[str]:
    """What is wrong with one command (empty: it parses). `trained`: workdir -> (config,
    names) of the page's earlier `jaxgen train` commands, updated here."""
    args = _normalise(cmd.args)
    subs = _subparsers()
    if not args:
        return ["no subcommand"]
    sub, rest = args[0], args[1:]
    if sub not in subs:
        return [f"unknown subcommand '{sub}' (jaxgen has: {', '.join(sorted(subs))})"]
    parser = subs[sub]
    options = parser._option_string_actions
    positionals = [a for a in parser._actions if not a.option_strings]
    problems, overrides, values, given = [], [], {}, []
    i = 0
    while i < len(rest):
        a = rest[i]
        if a.startswith("--config."):
            key, eq, value = a[len("--config."):].partition("=")
            if not eq:
                nxt = rest[i + 1] if i + 1 < len(rest) else None
                value = None
                if nxt is not None and not nxt.startswith("-"):
                    value, i = nxt, i + 1
            overrides.append((key, value))
        elif a.startswith("-") and len(a) > 1:
            flag, eq, value = a.partition("=")
            action = options.get(flag)
            if action is None:
                problems.append(f"unknown flag {flag} for jaxgen {sub} (it takes: "
                                f"{', '.join(sorted(o for o in options if o.startswith('--')))})")
            elif action.nargs != 0:
                if not eq:
                    value = rest[i + 1] if i + 1 < len(rest) else None
                    if value is not None and value.startswith("--"):
                        value = None
                    if value is not None:
                        i += 1
                if value is None and not cmd.inline:
                    problems.append(f"{flag} needs a value")
                elif value is not None and not _placeholder(value):
                    if action.type in (int, float):
                        try:
                            action.type(value)
                        except ValueError:
                            problems.append(f"{flag} {value}: not {action.type.__name__}")
                    if action.choices and value not in action.choices:
                        problems.append(f"{flag} {value}: not one of {list(action.choices)}")
                values[action.dest] = value
        else:
            given.append(a)
        i += 1
    if len(given) > len(positionals):
        problems.append(f"unexpected argument(s) {given[len(positionals):]} for jaxgen {sub}")

    config = None
    cfg_name = values.get("config") if sub in ("train", "bench") else (
        given[0] if sub == "config" and given else None)
    if cfg_name is not None and not _placeholder(cfg_name):
        try:
            config = _config_path(cfg_name)
        except Exception as e:  # noqa: BLE001 - any failure to find it is the finding
            problems.append(f"config '{cfg_name}': {str(e).splitlines()[0]}")
    if sub == "reproduce" and given:
        known = set(jaxgen_list()["reproductions"]) | {"all", "verdicts"}
        for name in given[0].split("|"):
            if not _placeholder(name) and name not in known:
                problems.append(f"unknown reproduction '{name}' (known: {sorted(known)})")

    names = _names(overrides)
    workdir = values.get("workdir")
    if sub in ("train", "bench", "config"):
        if config is None and overrides and (cfg_name is None or _placeholder(cfg_name)):
            problems += _check_overrides(overrides, None, ())
        elif config is not None:
            problems += _check_overrides(overrides, config, names)
            if sub == "train" and workdir and not _placeholder(workdir):
                trained[workdir] = (config, names)
    elif overrides:
        if sub in ("reproduce", "classifier", "list"):
            problems.append(f"jaxgen {sub} takes no --config overrides")
        elif workdir in trained:
            config, train_names = trained[workdir]
            problems += _check_overrides(overrides, config, names or train_names)
        else:
            problems += _check_overrides(overrides, None, ())
    return problems


def check_markdown(text: str, name: str) -> tuple[list[Command], list[str]]:
    """(the commands found, one line per problem: where, the command, what is wrong)."""
    doc = parse_doc(text, name)
    trained: dict = {}
    problems = []
    for cmd in doc.commands:
        found = check_command(cmd, trained)
        if cmd.expect_error and not found:
            problems.append(f"{cmd.where}: `{cmd.text}`: shown failing, but it parses")
        elif not cmd.expect_error:
            problems += [f"{cmd.where}: `{cmd.text}`: {p}" for p in found]
    for frag in doc.fragments:  # overrides quoted alone: keys some shipped config declares
        overrides = [(a[len("--config."):].partition("=")[0], a.partition("=")[2] or None)
                     for a in _normalise(frag.args) if a.startswith("--config.")]
        overrides = [(k, v if v is not None or _placeholder(k) else "?") for k, v in overrides]
        problems += [f"{frag.where}: `{frag.text}`: {p}"
                     for p in _check_overrides(overrides, None, ())]
    return doc.commands, problems


# ------------------------------------------------------------------ links and paths
def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    doc = parse_doc(path.read_text(), path.name)
    seen: dict[str, int] = {}
    out = set()
    for line in doc.prose.split("\n"):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = _slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def check_links(path: Path, text: str | None = None) -> list[str]:
    """Broken links, pictures, anchors, repository paths and Python names of a page."""
    doc = parse_doc(path.read_text() if text is None else text, path.name)
    where = path.relative_to(ROOT)
    problems = []
    for m in re.finditer(r"!?\[[^\]]*\]\(([^)\s]+)\)", doc.prose):
        target = m.group(1)
        no = doc.prose.count("\n", 0, m.start()) + 1
        if re.match(r"^[a-z]+:", target):
            continue  # http:, https:, mailto:
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            problems.append(f"{where}:{no}: link to {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where}:{no}: link to {target}: no heading #{anchor} there")
    for no, span in doc.spans:
        head = span.split("/")[0]
        if ("/" in span and head in REPO_DIRS and " " not in span and not _placeholder(span)
                and re.fullmatch(r"[\w./-]+", span) and not (ROOT / span).exists()):
            problems.append(f"{where}:{no}: `{span}`: no such path in the repository")
        m = re.fullmatch(r"(jaxgen(?:\.\w+)+)(\(.*\))?", span)
        if m and m.group(1) not in NOT_PYTHON and not _python_name_exists(m.group(1)):
            problems.append(f"{where}:{no}: `{span}`: no such Python name")
    return problems


@functools.lru_cache(maxsize=None)
def _python_name_exists(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for p in parts[i:]:
                obj = getattr(obj, p)
        except AttributeError:
            return False
        return True
    return False


# ------------------------------------------------------------------ the tests
def test_every_jaxgen_command_in_the_docs_parses():
    found, problems = [], []
    for path in DOC_FILES:
        commands, bad = check_markdown(path.read_text(), str(path.relative_to(ROOT)))
        found += commands
        problems += bad
    assert not problems, "stale commands in the docs:\n" + "\n".join(problems)
    # the finder finds them: every subcommand is shown, README's set-up command among them
    subs = {c.args[0] for c in found if c.args}
    assert set(_subparsers()) <= subs, f"commands no doc shows: {set(_subparsers()) - subs}"
    assert any(c.where.startswith("README.md") and c.args[:1] == ["train"] for c in found)
    assert len(found) > 50, len(found)


def test_links_pictures_and_paths_in_the_docs_exist():
    problems = [p for path in DOC_FILES for p in check_links(path)]
    assert not problems, "\n".join(problems)


def test_the_docs_name_every_dataset_reproduction_and_config_folder():
    listing = jaxgen_list()
    readme = (ROOT / "README.md").read_text()
    data = (ROOT / "docs" / "data.md").read_text()
    for name in listing["datasets"]:
        assert f"`{name}`" in readme and f"`{name}`" in data, name
    for name in listing["reproductions"]:
        for page in ("docs/reproductions.md", "reports/README.md"):
            assert f"[{name}](" in (ROOT / page).read_text(), (name, page)
    for folder in {Path(p).parent.name for p in listing["configs"]}:
        assert f"`configs/{folder}/`" in readme, folder


PLANTED = """\
# Stale

```bash
jaxgen train --config flow_matching/toy2d --workdir runs/ok --config.train.steps=100
jaxgen train --config flow_matching/no_such_config --workdir RUN
$ pip install -e . && jaxgen train --config diffusion/ddpm_toy2d --workdir RUN \\
    --config.objective.predicton=v
jaxgen sample --workdir runs/ok --num 16 --out x.png --no-such-flag
```

Inline: `jaxgen frobnicate --workdir RUN`, and
`jaxgen eval --workdir runs/ok --config.eval.ode_steps=20`.

```
$ jaxgen train --config flow_matching/toy2d --workdir RUN --config.train.steps=5
jaxgen: error: shown as an error, but nothing is wrong with it
```
"""


def test_the_checker_reports_each_kind_of_stale_command():
    commands, problems = check_markdown(PLANTED, "planted.md")
    assert len(commands) == 7, [c.text for c in commands]
    text = "\n".join(problems)
    assert len(problems) == 5, text
    expected = {
        "planted.md:5": "config 'flow_matching/no_such_config'",       # unknown config
        "planted.md:6": "unknown config key 'objective.predicton'",   # unknown key (after \\)
        "planted.md:8": "unknown flag --no-such-flag for jaxgen sample",
        "planted.md:11": "unknown subcommand 'frobnicate'",
        "planted.md:15": "shown failing, but it parses",
    }
    for where, what in expected.items():
        assert any(p.startswith(where) and what in p for p in problems), (where, what, text)
    # the good ones pass: runs/ok's eval override is checked against the config it trained
    assert not any(p.startswith(("planted.md:4", "planted.md:12"))
                   for p in problems), text


@pytest.mark.parametrize("line, what", [
    ("jaxgen eval --workdir W --config.eval.not_a_key=1", "unknown config key 'eval.not_a_key'"),
    ("jaxgen train --config gan/ns_toy2d --workdir RUN --config.train.steps=ten", "train.steps"),
    ("jaxgen bench --config flow_matching/toy2d --steps many", "--steps many: not int"),
    ("jaxgen reproduce no-such-claim", "unknown reproduction 'no-such-claim'"),
    ("jaxgen eval runs/x", "unexpected argument"),
    ("jaxgen train --config vae/vae_toy2d --workdir RUN --config.nope.KEY=VALUE",
     "unknown config group 'nope'"),
    ("`jaxgen sample --workdir W --num 4 --out x.png --config.sample.no_such=1` inline",
     "unknown config key 'sample.no_such'"),
    ("an override quoted alone: `--config.eval.ode_stepz=20`", "'eval.ode_stepz'"),
    ("JAXGEN_DEBUG=1 jaxgen list --config.train.steps=3", "takes no --config overrides"),
])
def test_the_checker_reports_more_kinds_of_mistakes(line, what):
    text = line if "`" in line else f"```bash\n{line}\n```\n"
    _, problems = check_markdown(text, "m.md")
    assert len(problems) == 1 and what in problems[0], problems


def test_links_are_checked_too():
    page = ROOT / "docs" / "planted.md"  # never written: the text is given
    text = ("[ok](results.md#conditional-flow-matching) [gone](nothing.md) "
            "[anchor](results.md#no-such-heading) ![pic](no_such.png) `jaxgen/no_such.py` "
            "`jaxgen.eval.no_such_function` `jaxgen.eval.evaluate.read_eval(W)`\n")
    problems = check_links(page, text)
    assert len(problems) == 5, problems
    for what in ("nothing.md", "#no-such-heading", "no_such.png", "jaxgen/no_such.py",
                 "no_such_function"):
        assert any(what in p for p in problems), (what, problems)


def test_the_family_hooks_table_is_the_code():
    """docs/objectives.md's table of each family's builder hooks and loss arguments: every
    registered objective but the classifier has a row, each row's hooks are its builder's
    keyword arguments and its loss arguments are the default loss's keyword-only ones."""
    import inspect

    import jaxgen
    from jaxgen.kernel import registry
    text = (ROOT / "docs" / "objectives.md").read_text()
    block = text.split("## Each family's hooks and loss arguments", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")]
            for ln in block.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    names = {r[0] for r in rows}
    assert names == set(registry.objective_names()) - {"classifier"}, names
    for name, hooks, default, kwargs in rows:
        make = inspect.signature(jaxgen.family(name).make).parameters
        assert [h.split(" ")[0] for h in hooks.split(", ") if not h.startswith('"')] \
            == list(make)[1:], (name, hooks, list(make))
        if name == "gan":
            continue
        module, fn = default.strip("`").rsplit(".", 1)
        loss = getattr(importlib.import_module(f"jaxgen.families.{module}"), fn)
        kw = [k for k, v in inspect.signature(loss).parameters.items()
              if v.kind is inspect.Parameter.KEYWORD_ONLY]
        assert kwargs.split(", ") == kw, (name, kwargs, kw)
