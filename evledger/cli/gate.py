"""`evledger gate` (GO/NO-GO per claim) and `evledger policy check`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from evledger.cli.output import (
    anchor_options,
    echo_folded,
    emit_json,
    exit_unless_verified,
    ledger_from,
    note,
    open_view,
    plural,
    say,
    signing_key_option,
)
from ledger.api import Prepared
from ledger.errors import NoGo, UsageError
from ledger.evidence import fmt_metric
from ledger.files import PUBLIC_FILE_MODE, check_output_path, write_atomic
from ledger.gate import (
    ClaimResult,
    GateResult,
    Policy,
    evaluate_view,
    load_policy_file,
    policy_statement,
    resolve_policy,
)
from ledger.textsafe import md_cell, md_code, visible
from ledger.view import VerifiedView

STATE_MARK = {"pass": "PASS", "fail": "FAIL", "missing": "MISSING"}


def _observed(claim: ClaimResult) -> str:
    if claim.state == "missing":
        return claim.note or "no evidence"
    observed = ", ".join(
        f"{c.metric} = {fmt_metric(c.observed)} ({c.op} {fmt_metric(c.value)}"
        + ("" if c.ok else ", fails")
        + ")"
        for c in claim.checks
    )
    return f"{observed}; fails: {claim.physics}" if claim.physics else observed


def _source(claim: ClaimResult) -> str:
    if claim.source is None:
        return "-"
    return f"seq {claim.source.seq} {claim.source.digest[:19]}"


def render_text(result: GateResult, trust_line: str = "") -> str:
    """Human output: the trust line, one line per claim, then the outcome and its reasons
    (policy and evidence strings shown through `visible()`, so each stays on its line)."""
    lines = [visible(trust_line)] if trust_line else []
    entries = plural(result.entries, "verified evidence entry", "verified evidence entries")
    lines.append(visible(f"policy {result.policy} ({result.source}), {entries}"))
    width = max((len(visible(c.id)) for c in result.claims), default=4)
    for c in result.claims:
        need = "required" if c.required else "optional"
        lines.append(
            f"  {visible(c.id):<{width}}  {need:<8}  {STATE_MARK[c.state]:<7}"
            f"  {visible(_observed(c))}  [{_source(c)}]"
        )
    lines.append(result.outcome + visible(_blocking_suffix(result)))
    return "\n".join(lines)


def _blocking_suffix(result: GateResult) -> str:
    blocking = [c for c in result.claims if c.blocking]
    if not blocking:
        return ""
    return ": " + "; ".join(f"{c.id} {c.state} ({', '.join(c.reasons())})" for c in blocking)


def render_markdown(result: GateResult, trust_line: str = "") -> str:
    """A Markdown table of the claims, for CI comments and reports."""
    lines = [f"_{md_cell(trust_line)}_", ""] if trust_line else []
    lines += [
        f"**Gate {md_code(result.policy)}: {result.outcome}**" + md_cell(_blocking_suffix(result)),
        f"policy: {md_cell(result.source)}",
        "",
        "| claim | title | required | state | observed | entry |",
        "|---|---|---|---|---|---|",
    ]
    for c in result.claims:
        entry = f"seq {c.source.seq} `{c.source.digest[:19]}`" if c.source else "-"
        lines.append(
            f"| {md_cell(c.id)} | {md_cell(c.title)} | {'yes' if c.required else 'no'} "
            f"| {STATE_MARK[c.state]} | {md_cell(_observed(c))} | {entry} |"
        )
    return "\n".join(lines) + "\n"


@click.command("gate")
@click.option(
    "--policy",
    "policy_spec",
    metavar="FILE|NAME",
    help="Policy name (the newest signed policy entry of that name, else the packaged one; "
    "default v37), or a file path (unsigned: said so, with its sha256).",
)
@click.option(
    "--rev", default="HEAD", show_default=True, help="Evaluate the ledger at this git revision."
)
@anchor_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--md", "as_md", is_flag=True, help="A Markdown table on stdout.")
@click.option(
    "--attest",
    "attest_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the outcome as a signed in-toto Test Result attestation (DSSE JSON).",
)
@signing_key_option
@click.pass_context
def gate_cmd(
    ctx: click.Context,
    policy_spec: str | None,
    rev: str,
    trusted: tuple[Path, ...],
    genesis: str | None,
    as_json: bool,
    as_md: bool,
    attest_path: Path | None,
    key_name: str | None,
) -> None:
    """GO/NO-GO per claim and overall, from verified entries only (exit 0 GO; 1 NO-GO or
    anything excluded; 2 bad input)."""
    if as_json and as_md:
        raise UsageError("--json and --md are mutually exclusive")
    ledger = ledger_from(ctx)
    if ledger.store.resolve(rev) is None:
        raise UsageError(f"no such revision {rev!r} in the ledger")
    ledger, view = open_view(ctx, trusted, genesis, rev=rev, quiet=as_json)
    policy = resolve_policy(policy_spec, view, ledger=ledger)
    result = evaluate_view(view, policy)
    if attest_path is not None:
        _write_attestation(attest_path, result, view, key_name)
    if as_json:
        emit_json(result.to_json())
    else:
        for warning in result.warnings:
            note(f"evledger: warning: {warning}")
        line = view.trust_line()
        if as_md:
            click.echo(render_markdown(result, line), nl=False)
        else:
            echo_folded(render_text(result, line))
    if not result.go:
        raise click.exceptions.Exit(NoGo.exit_code)
    exit_unless_verified(view)


def _write_attestation(
    path: Path, result: GateResult, view: VerifiedView, key_name: str | None
) -> None:
    """The signed Test Result attestation of the gate, written atomically (mode 0644)."""
    from ledger.api import signing_key
    from ledger.attestation import sign_gate

    check_output_path(path, "attestation")
    envelope = sign_gate(result, view, signing_key(key_name))
    text = json.dumps(envelope, sort_keys=True, indent=2) + "\n"
    write_atomic(path, text.encode(), mode=PUBLIC_FILE_MODE)
    click.echo(
        f"wrote {path} (in-toto test-result, {envelope['signatures'][0]['keyid'][:16]}…)", err=True
    )


def policy_doc(policy: Policy) -> dict[str, object]:
    """JSON view of a policy's claims."""
    return {
        "name": policy.name,
        "description": policy.description,
        "source": policy.source,
        "warnings": list(policy.warnings),
        "claims": [
            {
                "id": c.id,
                "title": c.title,
                "required": c.required,
                "evidence": c.evidence.describe(),
                "checks": [str(k) for k in c.checks],
            }
            for c in policy.claims
        ],
    }


@click.group("policy")
def policy_group() -> None:
    """Gate policies (TOML files of claims)."""


@policy_group.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="The parsed claims as JSON.")
def policy_check_cmd(file: Path, as_json: bool) -> None:
    """Validate a policy file and list its claims (exit 2 with the mistakes if invalid)."""
    policy = load_policy_file(file)
    if as_json:
        emit_json(policy_doc(policy))
        return
    for warning in policy.warnings:
        note(f"evledger: {file}: warning: {warning}")
    say(f"policy {policy.name}: {plural(len(policy.claims), 'claim')} — {policy.description}")
    for c in policy.claims:
        need = "required" if c.required else "optional"
        checks = " and ".join(str(k) for k in c.checks)
        say(f"  {c.id:<10} {need:<8} {checks}  <- {c.evidence.describe()}")


@policy_group.command("add")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@signing_key_option
@click.option("--json", "as_json", is_flag=True, help="The new entry as JSON.")
@click.pass_context
def policy_add_cmd(ctx: click.Context, file: Path, key_name: str | None, as_json: bool) -> None:
    """Sign a policy file into the ledger (a `policy` entry): `gate --policy NAME` then uses
    it, verified like any evidence."""
    statement = policy_statement(file)
    ledger = ledger_from(ctx)
    [entry] = ledger.append_prepared([Prepared(statement, "policy", str(file))], key_name=key_name)
    name = statement["predicate"]["name"]
    if as_json:
        emit_json({"seq": entry.seq, "digest": entry.digest, "name": name})
        return
    say(f"appended seq {entry.seq} policy {name} {entry.digest}")


COMMANDS = [gate_cmd, policy_group]
