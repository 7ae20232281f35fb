"""``sealed-gitops encrypt|decrypt``: the sops commands, natively (set, unset: :mod:`.set_cmds`).

Why this module exists: users come from ``sops`` and expect its commands, flags and
``.sops.yaml`` to work unchanged. Each command here reads a file, asks ``crypto.sops`` (the
engine) for bytes, and writes bytes; keys come from ``keys/`` (the keyring for decryption, the key
factory for recipients). No crypto and no format knowledge lives here.

The one decision made here is the decryption backend: files whose key groups hold only cloud KMS
keys (which we do not open natively) go to the real ``sops`` over stdin/stdout, as does every file
when ``SEALED_GITOPS_SOPS_BACKEND=binary`` (a switch for tests and for comparing behaviour).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from sealed_gitops.crypto.sops import (
    DEFAULT_STORES,
    KUBERNETES_ENCRYPTED_REGEX,
    Metadata,
    Rules,
    StoreSettings,
    decrypt_document,
    encrypt_bytes,
    extract,
    parse_path,
)
from sealed_gitops.crypto.sops.document import dump_tree, load_tree, split_metadata
from sealed_gitops.errors import ConfigError, NoMatchingKey
from sealed_gitops.keys.recipients import (
    environment_age_recipients,
    key_groups_from_rule,
    master_keys,
    naming_file,
)
from sealed_gitops.keys.sops_binary import FALLBACK_KINDS, SopsBinary, needs_sops_binary

from .options import (
    STDIN,
    KeyInputs,
    check_regex,
    display_name,
    emit,
    file_format,
    format_options,
    key_options,
    matching_rule,
    output_options,
    read_input,
    store_settings,
)
from .sops_codes import (
    CANNOT_READ_INPUT,
    CONFLICTING_PARAMETERS,
    INVALID_TREE_PATH,
    coded,
    fail,
    with_sops_codes,
)

__all__ = ["decrypt", "decrypt_to_bytes", "encrypt", "read_metadata"]

#: Set to ``binary`` to decrypt every file with the real sops (tests, behaviour comparisons).
BACKEND_ENV = "SEALED_GITOPS_SOPS_BACKEND"

config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .sops.yaml to use (default: the nearest one above FILE, else above the cwd).",
)


def read_metadata(data: bytes, *, fmt: str, file: str) -> Metadata:
    """The ``sops`` block of a file, without decrypting anything."""
    return split_metadata(load_tree(data, fmt=fmt, file=file, encrypted=True), file=file)[1]


# -- encrypt ----------------------------------------------------------------------------------


def _flag_rules(
    *,
    encrypted_regex: str | None,
    unencrypted_regex: str | None,
    encrypted_suffix: str | None,
    unencrypted_suffix: str | None,
    mac_only_encrypted: bool,
) -> Rules | None:
    given = {
        "encrypted_regex": encrypted_regex or "",
        "unencrypted_regex": unencrypted_regex or "",
        "encrypted_suffix": encrypted_suffix or "",
        "unencrypted_suffix": unencrypted_suffix or "",
    }
    if sum(1 for v in given.values() if v) > 1:
        raise ConfigError(
            "give at most one of --encrypted-regex, --unencrypted-regex, "
            "--encrypted-suffix and --unencrypted-suffix"
        )
    check_regex(encrypted_regex, flag="--encrypted-regex")
    check_regex(unencrypted_regex, flag="--unencrypted-regex")
    if not any(given.values()) and not mac_only_encrypted:
        return None
    return Rules(**given, mac_only_encrypted=mac_only_encrypted)


_RULE_KINDS = (
    "encrypted_regex",
    "unencrypted_regex",
    "encrypted_suffix",
    "unencrypted_suffix",
    "encrypted_comment_regex",
    "unencrypted_comment_regex",
)


def _merged_with_rule(flags: Rules, rule: Rules, *, file: str, found: Path | None) -> Rules:
    """sops' merge of the flags with the matching rule: a flag replaces the rule's setting of
    the same kind; two kinds at once (a flag's and the rule's) are refused, exit 8, as sops
    does, instead of silently dropping the rule's (which left values a rule says to encrypt in
    plaintext, or the reverse)."""
    merged = {kind: getattr(flags, kind) or getattr(rule, kind) for kind in _RULE_KINDS}
    if sum(1 for value in merged.values() if value) > 1:
        set_here = ", ".join(kind for kind in _RULE_KINDS if merged[kind])
        fail(
            CONFLICTING_PARAMETERS,
            f"{file}: cannot use more than one of encrypted_regex, unencrypted_regex, "
            f"encrypted_suffix, unencrypted_suffix and the comment regexes ({set_here}: the "
            f"flags and the rule in {found})",
        )
    return Rules(**merged, mac_only_encrypted=flags.mac_only_encrypted or rule.mac_only_encrypted)


def _is_manifest(plain: bytes, *, fmt: str, file: str) -> bool:
    branches = load_tree(plain, fmt=fmt, file=file, encrypted=False)
    keys = branches[0].keys_in_order() if branches else []
    return "apiVersion" in keys and "kind" in keys


@click.command("encrypt")
@click.argument("file")
@click.option("--age", "age", multiple=True, metavar="RECIPIENT", help="age recipient(s).")
@click.option("--pgp", "pgp", multiple=True, metavar="FINGERPRINT", help="PGP fingerprint(s).")
@click.option(
    "--vault-transit",
    "vault",
    multiple=True,
    metavar="URI",
    help="Vault transit key: https://host:port/v1/ENGINE/keys/NAME.",
)
@click.option("--encrypted-regex", help="Encrypt only values whose key matches.")
@click.option("--unencrypted-regex", help="Leave values whose key matches in the clear.")
@click.option("--encrypted-suffix", help="Encrypt only values whose key ends so.")
@click.option("--unencrypted-suffix", help="Leave values whose key ends so in the clear.")
@click.option("--mac-only-encrypted", is_flag=True, help="The MAC covers encrypted values only.")
@click.option("--shamir-threshold", type=click.IntRange(min=1), help="Key groups needed.")
@config_option
@format_options
@output_options
@key_options
@with_sops_codes(parse_code=CANNOT_READ_INPUT)
def encrypt(
    *,
    file: str,
    age: Sequence[str],
    pgp: Sequence[str],
    vault: Sequence[str],
    encrypted_regex: str | None,
    unencrypted_regex: str | None,
    encrypted_suffix: str | None,
    unencrypted_suffix: str | None,
    mac_only_encrypted: bool,
    shamir_threshold: int | None,
    config: Path | None,
    input_type: str | None,
    output_type: str | None,
    output: Path | None,
    in_place: bool,
    keys: KeyInputs,
) -> None:
    """Encrypt FILE for recipients given as flags or by the matching .sops.yaml rule."""
    name = display_name(file)
    fmt = file_format(file, input_type)
    plain = read_input(file)
    if output_type and output_type != fmt:
        if in_place:
            raise ConfigError("--in-place cannot change the format; use -o", file=name)
        # Convert in memory before encrypting: the engine writes the format it reads.
        plain = dump_tree(load_tree(plain, fmt=fmt, file=name, encrypted=False), fmt=output_type)
        fmt = output_type
    rules = _flag_rules(
        encrypted_regex=encrypted_regex,
        unencrypted_regex=unencrypted_regex,
        encrypted_suffix=encrypted_suffix,
        unencrypted_suffix=unencrypted_suffix,
        mac_only_encrypted=mac_only_encrypted,
    )
    factory = keys.factory()
    threshold = shamir_threshold or 0
    rule, found = (None, None) if age or pgp or vault else matching_rule(file, config)
    if rule is None and not (age or pgp or vault):
        # sops' SOPS_AGE_RECIPIENTS; unlike sops it never overrides a matching .sops.yaml rule.
        age = environment_age_recipients()
    if age or pgp or vault:
        with naming_file(name):
            groups = [master_keys(age=age, pgp=pgp, vault=vault, factory=factory)]
    else:
        if rule is None:
            where = f"no creation rule in {found} matches" if found else "no .sops.yaml found"
            raise ConfigError(
                f"no recipients: give --age/--pgp/--vault-transit ({where})", file=name
            )
        with naming_file(f"{name} (rule in {found})"):
            groups = key_groups_from_rule(rule, factory=factory)
        threshold = threshold or rule.shamir_threshold
        if rules is None and rule.has_rule:
            rules = rule.rules
        elif rules is None and rule.rules.mac_only_encrypted:
            rules = Rules(mac_only_encrypted=True)
        elif rules is not None:
            rules = _merged_with_rule(rules, rule.rules, file=name, found=found)
    # Only the MAC flag: keep the default a Kubernetes manifest would get otherwise.
    if rules == Rules(mac_only_encrypted=True) and _is_manifest(plain, fmt=fmt, file=name):
        rules = Rules(encrypted_regex=KUBERNETES_ENCRYPTED_REGEX, mac_only_encrypted=True)
    if threshold and threshold > len(groups):
        raise ConfigError(f"--shamir-threshold {threshold} exceeds the {len(groups)} key groups")
    result = encrypt_bytes(
        plain,
        key_groups=groups,
        threshold=threshold,
        rules=rules,
        file=name,
        fmt=fmt,
        stores=store_settings(file, config),
    )
    emit(result, source=file, output=output, in_place=in_place)


# -- decrypt ----------------------------------------------------------------------------------


def _binary_decrypt(
    data: bytes, *, fmt: str, out_fmt: str, file: str, keys: KeyInputs, ignore_mac: bool
) -> bytes:
    env = dict(os.environ)
    if keys.age_identities:
        # sops reads identities from its variables only: hand ours over the same way.
        texts = [p.read_text(encoding="utf-8") for p in keys.age_identities]
        env["SOPS_AGE_KEY"] = "\n".join([env.get("SOPS_AGE_KEY", ""), *texts]).strip()
    if keys.gnupghome is not None:
        env["GNUPGHOME"] = str(keys.gnupghome)
    if keys.vault_token:
        env["VAULT_TOKEN"] = keys.vault_token
    binary = SopsBinary(env=env)
    return binary.decrypt(
        data,
        fmt=fmt,
        output_fmt=out_fmt,
        filename=None if file == display_name(STDIN) else file,
        ignore_mac=ignore_mac,
    )


def decrypt_to_bytes(
    data: bytes,
    *,
    file: str,
    fmt: str,
    out_fmt: str,
    keys: KeyInputs,
    ignore_mac: bool = False,
    extract_path: str | None = None,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    """Decrypt natively, or with the sops binary when only it can open the file."""
    meta = read_metadata(data, fmt=fmt, file=file)
    kinds = [[s.kind for s in group] for group in meta.key_groups]
    use_binary = os.environ.get(BACKEND_ENV, "").lower() == "binary" or needs_sops_binary(kinds)
    if not use_binary:
        with keys.keyring() as ring:
            try:
                if extract_path is not None:
                    if ignore_mac:
                        raise ConfigError("--ignore-mac cannot be combined with --extract")
                    with coded(INVALID_TREE_PATH):
                        parts = parse_path(extract_path)
                    return extract(data, parts, unwrapper=ring, file=file, fmt=fmt, stores=stores)
                doc = decrypt_document(
                    data, unwrapper=ring, file=file, fmt=fmt, ignore_mac=ignore_mac
                )
                return dump_tree(doc.branches, fmt=out_fmt, stores=stores)
            except NoMatchingKey:
                if not any(k in FALLBACK_KINDS for group in kinds for k in group):
                    raise
    if extract_path is not None:
        raise ConfigError(
            "--extract is not available for files only sops can open: decrypt the whole file",
            file=file,
        )
    return _binary_decrypt(
        data, fmt=fmt, out_fmt=out_fmt, file=file, keys=keys, ignore_mac=ignore_mac
    )


@click.command("decrypt")
@click.argument("file")
@click.option(
    "--extract",
    "extract_path",
    metavar="PATH",
    help='Print one value or subtree, e.g. \'["data"]["password"]\'.',
)
@click.option(
    "--ignore-mac", is_flag=True, help="Recovery only: decrypt even when the MAC does not match."
)
@format_options
@output_options
@key_options
@with_sops_codes()
def decrypt(
    *,
    file: str,
    extract_path: str | None,
    ignore_mac: bool,
    input_type: str | None,
    output_type: str | None,
    output: Path | None,
    in_place: bool,
    keys: KeyInputs,
) -> None:
    """Decrypt FILE (- for stdin) to stdout, -w FILE, or in place."""
    name = display_name(file)
    fmt = file_format(file, input_type)
    plain = decrypt_to_bytes(
        read_input(file),
        file=name,
        fmt=fmt,
        out_fmt=output_type or fmt,
        keys=keys,
        ignore_mac=ignore_mac,
        extract_path=extract_path,
        stores=store_settings(file),
    )
    emit(plain, source=file, output=output, in_place=in_place, private=True)
