"""Adding a KeyRing's age recipient to a repository's own ``.sops.yaml``, without weakening it.

Why a module: ``keys fetch`` used to rewrite ``.sops.yaml`` through PyYAML, which dropped every
comment, and put a catch-all ``path_regex: .*`` rule with ``encrypted_regex:
^(data|stringData)$`` first. sops uses the first matching rule, so ``sops -e -i app.env`` then left
``NEW_TOKEN=...`` in plaintext (issue 12). A repository's rules are its owners' decisions; ``keys
fetch`` only adds the cluster as a recipient, so that what they encrypt the cluster can open.

What changes (and what does not):

* The file is parsed with ruamel.yaml's round-trip composer, and the edit is a splice at the byte
  positions of the nodes it found: comments, order, quoting, folding and indentation stay byte
  for byte (ruamel's own emitter re-indents and re-folds, so it does not write the file). The
  result is parsed again with the same reader sops-compatible code uses, and checked.
* Which rules: the ``--rule-regex`` ones (exact ``path_regex`` text) when given; else the rules
  that already hold one of this KeyRing's recipients (a rotation keeps the set the owners chose);
  else, on the first fetch, every rule, since a file the repository encrypts with a rule the
  cluster is not a recipient of fails to deploy.
* In each chosen rule, this KeyRing's older recipients are replaced by the active one; every
  other recipient (a team key, another cluster) is kept. Encryption rules are never touched.
* A rule with one key group gets the recipient in that group. A rule with several key groups is
  refused: sops splits the data key between the groups (Shamir), so a recipient in one group
  cannot open the file, and one in every group would undo the split the owners asked for.
* Refused as well, with the file unchanged: invalid YAML, several documents, a rule that is not a
  mapping, anchors, aliases or merge keys in a rule (an edit would change other places), a
  ``--rule-regex`` no rule has. The message says what to do instead.
* No ``.sops.yaml``, or one without ``creation_rules``: rules are written (appended after what
  the file holds), with comments: manifests get the Kubernetes ``encrypted_regex``, every other
  file is encrypted whole.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sealed_gitops.crypto.sops import load_creation_rules
from sealed_gitops.errors import ConfigError

__all__ = ["SopsConfigChange", "default_rules", "plan_sops_config"]

HAND = (
    "To go on, add the cluster's recipient (keys/*/age.txt) to the rules by hand and run "
    "keys fetch --no-sops-config"
)


@dataclass(frozen=True)
class SopsConfigChange:
    """The new text of ``.sops.yaml`` and what changed, for the user to read."""

    text: str
    diff: list[str]
    summary: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.diff)


@dataclass
class _Rule:
    index: int
    node: MappingNode
    path_regex: str
    #: the mapping that holds the ``age`` recipients: the rule or its one key group
    container: MappingNode
    age: Node | None
    recipients: list[str]
    #: why the rule cannot be extended (None: it can)
    problem: str | None = None


def default_rules(recipient: str, *, keyring: str, header: bool = True) -> str:
    """The rules written when a repository has none."""
    head = (
        f"# Written by `sealed-gitops keys fetch` for KeyRing {keyring}. sops and sealed-gitops\n"
        "# use the first rule whose path_regex matches a file: put more specific rules above.\n"
        if header
        else ""
    )
    return (
        f"{head}creation_rules:\n"
        "  # Kubernetes manifests: only the values under a Secret's data and stringData are\n"
        "  # encrypted, so names, labels and namespaces stay readable to reviews and kustomize.\n"
        "  - path_regex: \\.ya?ml$\n"
        "    encrypted_regex: ^(data|stringData)$\n"
        f"    age: {recipient}\n"
        "  # Everything else (dotenv, INI, JSON, binary files): every value is encrypted.\n"
        "  - path_regex: .*\n"
        f"    age: {recipient}\n"
    )


def _refuse(file: str, reason: str, hint: str = "") -> ConfigError:
    return ConfigError(f"{file}: {reason}. Nothing was changed. {hint}{HAND}.")


def _get(mapping: MappingNode, name: str) -> Node | None:
    for key, value in mapping.value:
        if isinstance(key, ScalarNode) and key.value == name:
            return value  # type: ignore[no-any-return]
    return None


def _shared(node: Node, seen: set[int]) -> bool:
    """True when ``node`` or a node below it has an anchor, is an alias, or merges (``<<``)."""
    if id(node) in seen or getattr(node, "anchor", None):
        return True
    seen.add(id(node))
    if isinstance(node, MappingNode):
        return any(
            (isinstance(k, ScalarNode) and k.value == "<<") or _shared(k, seen) or _shared(v, seen)
            for k, v in node.value
        )
    if isinstance(node, SequenceNode):
        return any(_shared(item, seen) for item in node.value)
    return False


def _recipients(node: Node | None, where: str) -> list[str] | str:
    """The recipients an ``age`` node lists, or why they cannot be read."""
    if node is None:
        return []
    if isinstance(node, ScalarNode):
        # ruamel marks the line breaks of a folded scalar with \a (to fold it back the same way)
        value = str(node.value).replace("\a", "")
        if not value.strip():
            return f"{where}.age is empty"
        return [a.strip() for a in value.split(",") if a.strip()]
    if isinstance(node, SequenceNode) and all(isinstance(i, ScalarNode) for i in node.value):
        return [str(i.value).strip() for i in node.value]
    return f"{where}.age is neither a string nor a list of strings"


def _read_rule(node: Node, index: int) -> _Rule:
    where = f"creation_rules[{index}]"
    if not isinstance(node, MappingNode):
        empty = MappingNode("tag:yaml.org,2002:map", [])
        return _Rule(index, empty, "", empty, None, [], f"{where} is not a mapping")
    regex_node = _get(node, "path_regex")
    regex = str(regex_node.value) if isinstance(regex_node, ScalarNode) else ""
    rule = _Rule(index, node, regex, node, None, [])
    if _shared(node, set()):
        rule.problem = f"{where} uses a YAML anchor, alias or merge key"
        return rule
    groups = _get(node, "key_groups")
    if isinstance(groups, SequenceNode) and groups.value:
        if len(groups.value) > 1:
            rule.problem = (
                f"{where} (path_regex {regex!r}) splits the data key between "
                f"{len(groups.value)} key_groups: a recipient in one group cannot open its "
                "files, one in every group would undo the split"
            )
            return rule
        group = groups.value[0]
        if not isinstance(group, MappingNode):
            rule.problem = f"{where}.key_groups[0] is not a mapping"
            return rule
        rule.container = group
    elif groups is not None and not isinstance(groups, SequenceNode) and groups.value:
        rule.problem = f"{where}.key_groups is not a list"
        return rule
    rule.age = _get(rule.container, "age")
    found = _recipients(rule.age, where)
    if isinstance(found, str):
        rule.problem = found
    else:
        rule.recipients = found
    return rule


def _line_end(text: str, index: int) -> int:
    """The index just after the line break that ends the line holding ``index``."""
    found = text.find("\n", index)
    return len(text) if found < 0 else found + 1


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


Edit = tuple[int, int, str]


def _scalar_edit(text: str, node: ScalarNode, wanted: list[str]) -> list[Edit]:
    start, end = node.start_mark.index, node.end_mark.index
    original = text[start:end]
    if node.style in (">", "|"):
        core = original.rstrip()
        header, _, body = core.partition("\n")
        first = body.split("\n", 1)[0]
        indent = first[: len(first) - len(first.lstrip())]
        lines = ",\n".join(indent + r for r in wanted)
        return [(start, start + len(core), f"{header}\n{lines}")]
    separator = ", " if ", " in node.value else ","
    quote = node.style if node.style in ("'", '"') else ""
    return [(start, end, f"{quote}{separator.join(wanted)}{quote}")]


def _sequence_edit(text: str, node: SequenceNode, wanted: list[str]) -> list[Edit]:
    start, end = node.start_mark.index, node.end_mark.index
    if node.flow_style:
        return [(start, end, "[" + ", ".join(wanted) + "]")]
    items = list(node.value)
    edits: list[Edit] = []
    last = items[-1]
    prefix = text[_line_start(text, last.start_mark.index) : last.start_mark.index]
    after = _line_end(text, last.end_mark.index)
    present = [str(i.value).strip() for i in items]
    for item, value in zip(items, present, strict=True):
        if value not in wanted:
            line = _line_start(text, item.start_mark.index)
            edits.append((line, _line_end(text, item.end_mark.index), ""))
    newline = "" if text[:after].endswith("\n") else "\n"
    added = "".join(f"{prefix}{r}\n" for r in wanted if r not in present)
    if added:
        edits.append((after, after, newline + added))
    return edits


def _missing_edit(text: str, container: MappingNode, recipient: str) -> list[Edit]:
    if container.flow_style:
        close = container.end_mark.index - 1
        if text[close] != "}":
            raise ConfigError("unexpected flow mapping")
        return [(close, close, f", age: {recipient}")]
    key = container.value[0][0]
    indent = " " * key.start_mark.column
    last = container.value[-1][1]
    end = last.end_mark
    at = end.index if end.column == 0 else _line_end(text, end.index)
    newline = "" if text[:at].endswith("\n") else "\n"
    return [(at, at, f"{newline}{indent}age: {recipient}\n")]


def _rule_edits(text: str, rule: _Rule, wanted: list[str], recipient: str) -> list[Edit]:
    if isinstance(rule.age, ScalarNode):
        return _scalar_edit(text, rule.age, wanted)
    if isinstance(rule.age, SequenceNode):
        return _sequence_edit(text, rule.age, wanted)
    return _missing_edit(text, rule.container, recipient)


def _compose(text: str, file: str) -> Node | None:
    try:
        documents = list(YAML(typ="rt").compose_all(text))
    except YAMLError as exc:
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise _refuse(file, f"not valid YAML ({problem})") from None
    documents = [d for d in documents if d is not None]
    if len(documents) > 1:
        raise _refuse(file, "holds several YAML documents")
    return documents[0] if documents else None


def _wanted(current: list[str], *, own: set[str], recipient: str) -> list[str]:
    """The recipients in their order, this KeyRing's older ones out, the active one in once."""
    kept: list[str] = []
    for r in current:
        if (r not in own or r == recipient) and r not in kept:
            kept.append(r)
    return kept if recipient in kept else [*kept, recipient]


def _choose(
    rules: list[_Rule], *, rule_regexes: Sequence[str], own: set[str], file: str
) -> list[_Rule]:
    if rule_regexes:
        known = {r.path_regex for r in rules}
        unknown = [r for r in rule_regexes if r not in known]
        if unknown:
            have = ", ".join(repr(r.path_regex) for r in rules) or "none"
            raise _refuse(
                file,
                f"no creation rule has path_regex {', '.join(unknown)} (the rules have: {have})",
                "Name one of these with --rule-regex. ",
            )
        return [r for r in rules if r.path_regex in rule_regexes]
    holders = [r for r in rules if own.intersection(r.recipients)]
    return holders or rules


def plan_sops_config(
    text: str | None,
    *,
    recipient: str,
    keyring_recipients: Sequence[str],
    keyring: str,
    rule_regexes: Sequence[str] = (),
    file: str = ".sops.yaml",
) -> SopsConfigChange:
    """The ``.sops.yaml`` text with ``recipient`` added to the matching rules (see the module)."""
    before = text or ""
    root = _compose(before, file)
    if root is not None and not isinstance(root, MappingNode):
        raise _refuse(file, "is not a mapping")
    rules_node = _get(root, "creation_rules") if root is not None else None
    if rules_node is None or (isinstance(rules_node, ScalarNode) and not rules_node.value):
        if rules_node is not None:
            raise _refuse(file, "creation_rules is empty")
        joint = "" if not before or before.endswith("\n") else "\n"
        after = before + joint + default_rules(recipient, keyring=keyring, header=not before)
        return _change(before, after, file, [f"wrote creation rules for KeyRing {keyring}"])
    if not isinstance(rules_node, SequenceNode):
        raise _refuse(file, "creation_rules is not a list")
    rules = [_read_rule(node, i) for i, node in enumerate(rules_node.value)]
    own = {*keyring_recipients, recipient}
    chosen = _choose(rules, rule_regexes=rule_regexes, own=own, file=file)
    for rule in chosen:
        if rule.problem:
            raise _refuse(file, rule.problem, "Choose other rules with --rule-regex. ")
    edits: list[Edit] = []
    summary: list[str] = []
    for rule in chosen:
        wanted = _wanted(rule.recipients, own=own, recipient=recipient)
        if wanted == rule.recipients:
            continue
        edits.extend(_rule_edits(before, rule, wanted, recipient))
        dropped = [r for r in rule.recipients if r not in wanted]
        summary.append(
            f"creation_rules[{rule.index}] (path_regex {rule.path_regex!r}): + {recipient}"
            + (f", - {', '.join(dropped)}" if dropped else "")
        )
    after = before
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        after = after[:start] + new + after[end:]
    _check(after, file=file, chosen=chosen, count=len(rules), recipient=recipient, own=own)
    return _change(before, after, file, summary)


def _check(
    after: str, *, file: str, chosen: list[_Rule], count: int, recipient: str, own: set[str]
) -> None:
    """Parse the result as sops would and check that only the recipients changed."""
    try:
        parsed = load_creation_rules(after)
    except ConfigError as exc:
        raise _refuse(file, f"the edit would not parse ({exc.reason})") from None
    if len(parsed) != count:
        raise _refuse(file, "the edit changed the number of rules")
    for rule in chosen:
        groups = parsed[rule.index].key_groups
        ages = groups[0].age if groups else ()
        expected = _wanted(rule.recipients, own=own, recipient=recipient)
        if list(ages) != expected or parsed[rule.index].path_regex != rule.path_regex:
            raise _refuse(file, f"the edit of creation_rules[{rule.index}] did not come out right")


def _change(before: str, after: str, file: str, summary: list[str]) -> SopsConfigChange:
    diff = list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), f"a/{file}", f"b/{file}", lineterm=""
        )
    )
    return SopsConfigChange(text=after, diff=diff, summary=summary if diff else [])
