"""`evledger gate` (GO/NO-GO per claim) and `evledger policy check`."""

from __future__ import annotations

from pathlib import Path

import click

from evledger.cli.output import emit_json, ledger_from, note, plural, progress_bar, say
from ledger.errors import NoGo, UsageError
from ledger.evidence import fmt_metric
from ledger.gate import (
    ClaimResult,
    GateResult,
    Policy,
    evaluate_ledger,
    load_policy_file,
    resolve_policy,
)
from ledger.textsafe import md_cell, md_code, visible

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


def render_text(result: GateResult) -> str:
    """Human output: one line per claim, then the outcome and its reasons (policy and evidence
    strings shown through `visible()`, so each stays on its line)."""
    entries = plural(result.entries, "evidence entry", "evidence entries")
    lines = [visible(f"policy {result.policy} ({result.source}), {entries}")]
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


def render_markdown(result: GateResult) -> str:
    """A Markdown table of the claims, for CI comments and reports."""
    lines = [
        f"**Gate {md_code(result.policy)}: {result.outcome}**" + md_cell(_blocking_suffix(result)),
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
    help="Policy file, or name (the ledger's policies/NAME.toml, else packaged); default v37.",
)
@click.option(
    "--rev", default="HEAD", show_default=True, help="Evaluate the ledger at this git revision."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--md", "as_md", is_flag=True, help="A Markdown table on stdout.")
@click.pass_context
def gate_cmd(
    ctx: click.Context, policy_spec: str | None, rev: str, as_json: bool, as_md: bool
) -> None:
    """GO/NO-GO per claim and overall (exit 0 GO, 1 NO-GO)."""
    if as_json and as_md:
        raise UsageError("--json and --md are mutually exclusive")
    ledger = ledger_from(ctx)
    if ledger.store.resolve(rev) is None:
        raise UsageError(f"no such revision {rev!r} in the ledger")
    policy = resolve_policy(policy_spec, ledger, rev)
    with progress_bar("evaluating the gate", enabled=not as_json):
        result = evaluate_ledger(ledger, policy, rev=rev)
    if as_json:
        emit_json(result.to_json())
    else:
        for warning in result.warnings:
            note(f"evledger: warning: {warning}")
        click.echo(render_markdown(result) if as_md else render_text(result), nl=not as_md)
    if not result.go:
        raise click.exceptions.Exit(NoGo.exit_code)


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


COMMANDS = [gate_cmd, policy_group]
