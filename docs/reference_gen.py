"""The generated part of the manual: the CLI reference from the argparse parsers, the settings
reference from the config dataclasses, the API pages from the docstrings (mkdocstrings).

Nothing here is written twice: ``gen_pages.py`` (run by mkdocs-gen-files during ``mkdocs build``)
writes the pages from these functions, and ``tests/test_docs.py`` checks the same functions against
the parsers, the dataclasses and the hand-written pages.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass

# ----------------------------------------------------------------------------------------- CLI


@dataclass
class Option:
    """One argument of one command, as argparse holds it."""

    command: str  # "xtalnn train", "xtalnn campaign run"
    flags: list  # ["-o", "--output"]; [] for a positional
    dest: str
    metavar: str  # what follows the flag ("" for switches), or the positional's name
    help: str
    default: object
    choices: list | None
    required: bool
    group: str

    @property
    def name(self) -> str:
        long = [f for f in self.flags if f.startswith("--")]
        return long[0] if long else (self.flags[0] if self.flags else self.metavar)


@dataclass
class Command:
    name: str  # "xtalnn train"
    help: str
    description: str
    usage: str
    options: list


def top_parser() -> argparse.ArgumentParser:
    """The ``xtalnn`` parser, as the installed entry point builds it."""
    from xtalnn.cli import build_parser

    return build_parser()


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield name, sub, helps.get(name) or ""


def _metavar(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        mv = action.metavar
        return " ".join(mv) if isinstance(mv, tuple) else str(mv)
    if action.choices is not None:
        return "{" + ",".join(map(str, action.choices)) + "}"
    base = action.dest.upper() if action.option_strings else action.dest
    return {None: base, "?": f"[{base}]", "*": f"[{base} ...]", "+": f"{base} [{base} ...]"}.get(
        action.nargs, " ".join([base] * action.nargs) if isinstance(action.nargs, int) else base)


def commands(parser: argparse.ArgumentParser | None = None, prefix: str = "xtalnn", help: str = "") -> list[Command]:
    """Every command and sub-command with its options, parents first."""
    parser = parser or top_parser()
    groups = {id(a): g.title for g in parser._action_groups for a in g._group_actions}
    options = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        metavar = _metavar(action) if action.option_strings else str(action.metavar or action.dest)
        options.append(Option(prefix, list(action.option_strings), action.dest, metavar,
                              action.help or "", action.default,
                              list(action.choices) if action.choices is not None else None,
                              bool(action.required or not action.option_strings and action.nargs not in ("?", "*")),
                              groups.get(id(action), "")))
    usage = parser.format_usage().strip()
    out = [Command(prefix, help, parser.description or "", usage, options)]
    for name, sub, sub_help in _subparsers(parser):
        out.extend(commands(sub, f"{prefix} {name}", sub_help))
    return out


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def _default(option: Option, defaults: dict) -> str:
    """The default shown: argparse's, or for `xtalnn train` the TrainConfig field the option sets."""
    if option.dest in defaults:
        value = defaults[option.dest]
    else:
        value = option.default
    if value is None or value is argparse.SUPPRESS or (value is False and not option.metavar) or value == []:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _train_defaults() -> dict:
    from xtalnn.potential.config import TrainConfig

    d = TrainConfig()
    return {f.name: getattr(d, f.name) for f in dataclasses.fields(TrainConfig)}


def cli_markdown() -> str:
    """The CLI reference page."""
    lines = ["# Command-line reference", "",
             "Generated from the argparse parsers of `xtalnn` (`python/xtalnn/cli.py` and each package's "
             "`cli.py`) when the manual is built: every option of every command, with its help text and default. "
             "`xtalnn COMMAND --help` prints the same.", ""]
    train_defaults = _train_defaults()
    for cmd in commands():
        if not cmd.options and not cmd.description:
            continue
        level = "#" * min(2 + cmd.name.count(" ") - 1, 4) if " " in cmd.name else "##"
        lines += [f"{level} `{cmd.name}`", ""]
        if cmd.help or cmd.description:
            lines += [_cell(cmd.description or cmd.help), ""]
        lines += ["```text", cmd.usage, "```", ""]
        if not cmd.options:
            continue
        defaults = train_defaults if cmd.name == "xtalnn train" else {}
        lines += ["| option | argument | default | description |", "|---|---|---|---|"]
        for o in cmd.options:
            flags = ", ".join(f"`{f}`" for f in o.flags) if o.flags else f"`{o.metavar}` (positional)"
            desc = o.help
            if o.choices is not None and o.metavar and "{" not in o.metavar:
                desc += f" (one of: {', '.join(map(str, o.choices))})"
            if o.required and o.flags:
                desc += " **required**"
            if o.group and o.group not in ("options", "optional arguments", "positional arguments"):
                desc = f"*{o.group}:* {desc}"
            arg = f"`{_cell(o.metavar)}`" if o.metavar and o.flags else ""
            default = _default(o, defaults)
            lines.append(f"| {flags} | {arg} | {_cell(default) and '`' + _cell(default) + '`'} | {_cell(desc)} |")
        lines.append("")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ settings

_UNITS = ("eV/atom per eV/Å", "Å³/atom", "eV/Å³", "eV/Å", "meV/atom", "eV/atom", "minutes", "epochs", "GPa", "Å", "eV")
_DIMENSIONLESS = re.compile(r"\b(share|fraction|fractions|probability|factor|learning[ -]rate|weight decay)\b")


def _field_comments(cls) -> dict:
    """``{field: comment}`` from the trailing ``# comment`` of each field line in the class body, plus
    comment-only lines that follow at the same column (continuations)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[str, str] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    current, column, last_line = None, -1, -1
    line_field: dict[int, str] = {}
    for line_no, line in enumerate(source.splitlines(), 1):
        m = re.match(r"\s+(\w+)\s*:", line)
        if m and m.group(1) in names:
            line_field[line_no] = m.group(1)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        row, col = tok.start
        text = tok.string.lstrip("#").strip()
        if row in line_field:
            current, column, last_line = line_field[row], col, row
            comments[current] = text
        elif line_field.get(row + 1) and text.startswith(line_field[row + 1] + ":"):
            # "# name: what it is" on the line above the field
            comments.setdefault(line_field[row + 1], text.partition(":")[2].strip())
            current = None
        elif current and col == column and row == last_line + 1:
            comments[current] += " " + text
            last_line = row
        else:
            current = None
    return comments


def _attribute_docstrings(cls) -> dict:
    """``{field: docstring}`` of string literals that follow a field (PEP 257 attribute docstrings)."""
    import ast

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body
    out = {}
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr) \
                and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str):
            out[a.target.id] = " ".join(b.value.value.split())
    return out


def unit_of(text: str) -> str:
    """The first unit a description names (Å, eV/atom, minutes, …), or ''."""
    for unit in _UNITS:
        if re.search(r"(?<![\w/])" + re.escape(unit) + r"(?![\w/³])", text):
            return unit
    return ""


@dataclass
class Setting:
    section: str  # TOML table ("" = top level) or the dataclass
    key: str
    type: str
    default: object
    description: str
    unit: str


def settings_of(cls, section: str = "", skip=()) -> list[Setting]:
    """One :class:`Setting` per dataclass field: description from the field metadata (``help``/``doc``),
    else its trailing comment, else its attribute docstring, else a base class's; unit from the metadata
    (``unit``) or the description."""
    out = []
    sources = []
    for klass in cls.__mro__:
        if dataclasses.is_dataclass(klass):
            sources.append((_field_comments(klass), _attribute_docstrings(klass)))
    instance = cls()
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        desc = f.metadata.get("help") or f.metadata.get("doc") or ""
        for comments, docs in sources:
            desc = desc or comments.get(f.name, "") or docs.get(f.name, "")
        unit = f.metadata.get("unit") or unit_of(desc)
        out.append(Setting(section, f.name, str(f.type), getattr(instance, f.name), desc, unit))
    return out


def campaign_settings() -> list[Setting]:
    """Every key of a campaign TOML file, by table, from :mod:`xtalnn.campaign.config` and the
    training settings (:class:`~xtalnn.potential.config.TrainConfig`)."""
    from xtalnn.campaign import config as C
    from xtalnn.potential.config import TrainConfig

    top = {s.key: s for s in settings_of(C.CampaignConfig)}
    # where CampaignConfig's flat fields live in the TOML file
    placed = {"elements": ("composition", "elements"), "composition_model": ("composition", "model"),
              "max_atoms": ("composition", "max_atoms"), "min_loss": ("training", "min_loss"),
              "energy_window": ("training", "energy_window"), "low_energy_scale": ("training", "low_energy_scale"),
              "warm_start": ("training", "warm_start"), "database": ("database", "url")}
    tables = {"ga", "oracle", "training", "convergence", "executor", "source"}
    out = []
    for key, s in top.items():
        if key in tables:
            continue
        section, name = placed.get(key, ("", key))
        out.append(dataclasses.replace(s, section=section, key=name))
    out += settings_of(C.GAConfig, "ga", skip=C.GAConfig.SET_BY_CAMPAIGN)
    out += settings_of(C.OracleConfig, "oracle")
    out += settings_of(TrainConfig, "training", skip=("elements",))
    out += settings_of(C.ConvergenceConfig, "convergence")
    out += settings_of(C.ExecutorConfig, "executor")
    return out


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def _table(settings: list[Setting], key_header="key") -> list[str]:
    lines = [f"| {key_header} | type | default | unit | description |", "|---|---|---|---|---|"]
    for s in settings:
        lines.append(f"| `{s.key}` | `{_cell(s.type)}` | `{_cell(_value(s.default))}` | {s.unit or '—'} | "
                     f"{_cell(s.description)} |")
    return lines + [""]


def config_markdown() -> str:
    """The settings reference page: training (TrainConfig), GA (GASettings) and campaign TOML keys."""
    from xtalnn.potential.config import TrainConfig
    from xtalnn.search.config import GASettings

    lines = ["# Settings reference", "",
             "Generated from the config dataclasses when the manual is built: names, types, defaults, units "
             "and descriptions (from the field metadata or the field's comment in the source). A unit of — "
             "means a count, a switch, a name or a dimensionless number.", "",
             "## Training: `TrainConfig`", "",
             "`xtalnn.potential.config.TrainConfig`: the keys of `xtalnn train --config FILE.toml|json`, of a "
             "campaign's `[training]` table and of `xtalnn train`'s options (`lr_factor` ↔ `--lr-factor`). "
             "`max_time` is the time budget shown in the progress line.", ""]
    lines += _table(settings_of(TrainConfig))
    lines += ["## Structure search: `GASettings`", "",
              "`xtalnn.search.config.GASettings`: the options of `xtalnn search` (`--seeds` sets "
              "`seeds_per_system`, `--min-distance A-B=D` fills `min_distances`), the keywords of "
              "`xtalnn.search.search()`, and the base of a campaign's `[ga]` table.", ""]
    lines += _table(settings_of(GASettings))
    lines += ["## Campaign TOML file", "",
              "`xtalnn campaign run CONFIG.toml`: every key, by table (`xtalnn.campaign.config`). `[ga]` takes "
              "the `GASettings` keys above (except `seed` and `top_k`, which the campaign sets) plus its own; "
              "`[training]` takes the `TrainConfig` keys (except `elements`) plus the campaign's own.", ""]
    settings = campaign_settings()
    for section in ("", "composition", "ga", "oracle", "training", "convergence", "database", "executor"):
        rows = [s for s in settings if s.section == section]
        lines += [f"### {'top level' if not section else f'`[{section}]`'}", ""]
        lines += _table(rows)
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- API

#: modules with an API page (docstrings through mkdocstrings)
API_MODULES = (
    "xtalnn.descriptors",
    "xtalnn.neighbors",
    "xtalnn.ops",
    "xtalnn.potential.config",
    "xtalnn.potential.train",
    "xtalnn.potential.calculator",
    "xtalnn.potential.modelfile",
    "xtalnn.potential.model",
    "xtalnn.search",
    "xtalnn.search.config",
    "xtalnn.calculators.registry",
    "xtalnn.campaign.config",
    "xtalnn.campaign.executor",
    "xtalnn.enthalpy",
    "xtalnn.io.structures",
    "xtalnn.io.lammps_data",
    "xtalnn.lammps.wheel",
)


def _summary(module: str) -> str:
    """The first sentence of a module's docstring, read from its source (nothing imported)."""
    import ast
    from pathlib import Path

    base = Path(__file__).resolve().parents[1] / "python" / Path(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    first = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", first).replace("``", "`")  # reST roles and literals
    return _cell(first.split(". ")[0].rstrip(".") + ".") if first else ""


def api_pages() -> dict:
    """``{path: markdown}`` of the API pages (one per module in :data:`API_MODULES`)."""
    pages = {}
    for module in API_MODULES:
        pages[f"reference/api/{module}.md"] = f"# `{module}`\n\n::: {module}\n"
    index = ["# Python API", "", "Generated from the docstrings (mkdocstrings).", ""]
    index += [f"- [`{m}`]({m}.md): {_summary(m)}" for m in API_MODULES]
    pages["reference/api/index.md"] = "\n".join(index) + "\n"
    return pages
