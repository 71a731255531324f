"""`ledgerflow bundle …`: build deployable bundles of model versions, list and fetch them,
and set the per-model policy that builds them when an alias moves."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow.events.bundle_entities import Bundle

app = typer.Typer(
    help="Bundles: a model version converted to ONNX, TorchScript or a TensorFlow Serving "
    "SavedModel, checked against the original, with a manifest and a Dockerfile.",
    no_args_is_help=True,
)
policy_app = typer.Typer(
    help="Build bundles automatically when an alias (e.g. champion) is set on a version.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")

Targets = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        "-t",
        help="onnx, torchscript or savedmodel; repeat for several (default: all the "
        "model's flavor supports).",
    ),
]
Model = Annotated[str, typer.Argument(help="The registered model's name.")]


def _row(b: Bundle) -> tuple[Any, ...]:
    detail = b.artifact_uri if b.status == "built" else (b.reason or "")
    diff = "" if b.max_abs_diff is None else f"{b.max_abs_diff:.3g}"
    return (b.id, b.version, b.target, b.status, diff, b.size_bytes or "", b.trigger, detail)


_COLUMNS = ["id", "version", "target", "status", "max |diff|", "bytes", "trigger", "where / why"]


@app.command("build")
def build(
    ctx: typer.Context,
    model_uri: Annotated[
        str, typer.Argument(help="models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME/latest")
    ],
    targets: Targets = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once requested; do not wait for the end.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Convert a model version into bundles on Ray (LEDGERFLOW_RAY_ADDRESS), each checked
    for parity with the original. Exits 1 if any bundle failed."""
    bundles = state(ctx).client().build_bundles(model_uri, targets, wait=not no_wait)
    if as_json:
        output.print_json(bundles)
    else:
        output.table(_COLUMNS, [_row(b) for b in bundles], no_wrap=["id"])
    if any(b.status == "failed" for b in bundles):
        raise typer.Exit(1)


@app.command("list")
def list_bundles(
    ctx: typer.Context,
    name: Model,
    version: Annotated[int | None, typer.Argument(help="Only this version.")] = None,
    all_states: Annotated[
        bool, typer.Option("--all", "-a", help="Include failed and unfinished bundles.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """The bundles of a model, or of one of its versions."""
    bundles = state(ctx).client().list_bundles(name, version, include_failed=all_states)
    if as_json:
        output.print_json(bundles)
        return
    if not bundles:
        output.note(f"no bundles; build some with: ledgerflow bundle build models:/{name}/1")
        return
    output.table(_COLUMNS, [_row(b) for b in bundles], no_wrap=["id"])


@app.command("show")
def show(
    ctx: typer.Context,
    bundle_id: Annotated[str, typer.Argument(help="The bundle's id.")],
    as_json: JsonFlag = False,
) -> None:
    """One bundle with its manifest: inputs, outputs, parity, files with sha256."""
    b = state(ctx).client().get_bundle(bundle_id)
    if as_json:
        output.print_json(b)
        return
    manifest = b.manifest
    fields: dict[str, Any] = {
        "id": b.id, "model": f"{b.name} version {b.version}", "target": b.target,
        "status": b.status, "trigger": b.trigger,
        "created": output.format_time(b.creation_timestamp),
    }  # fmt: skip
    if b.status == "failed":
        fields["reason"] = b.reason
    if manifest:
        parity = manifest["parity"]
        fields |= {
            "where": b.artifact_uri,
            "runtime": f"{manifest['runtime']['name']} {manifest['runtime']['version']}",
            "entrypoint": manifest["entrypoint"],
            "inputs": ", ".join(
                f"{t['name']} {t['dtype']}{t['shape']}" for t in manifest["inputs"]
            ),
            "outputs": ", ".join(
                f"{t['name']} {t['dtype']}{t['shape']}" for t in manifest["outputs"]
            ),
            "parity": f"max |diff| {parity['max_abs_diff']:.3g} over {parity['inputs']} inputs "
            f"(rtol {parity['rtol']:g}, atol {parity['atol']:g})",
            "size": f"{manifest['size_bytes']} bytes",
        }
    output.table(["field", "value"], list(fields.items()), no_wrap=["field"])
    if manifest:
        output.table(
            ["file", "bytes", "sha256"],
            [(f["path"], f["size"], f["sha256"]) for f in manifest["files"]],
            no_wrap=["sha256"],
        )


@app.command("download")
def download(
    ctx: typer.Context,
    bundle_id: Annotated[str, typer.Argument(help="The bundle's id.")],
    dst: Annotated[str, typer.Argument(help="The folder to copy it into.")],
) -> None:
    """Copy a built bundle's files (manifest, model, Dockerfile...) into a folder."""
    output.line(state(ctx).client().download_bundle(bundle_id, dst))


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    name: Model,
    on_alias: Annotated[
        list[str], typer.Option("--on-alias", help="An alias that triggers builds; repeatable.")
    ],
    targets: Targets = None,
) -> None:
    """Build bundles of NAME whenever one of these aliases is set on a version (stored as
    the model tags ledgerflow.bundle.on_alias / ledgerflow.bundle.targets)."""
    tags = state(ctx).client().set_bundle_policy(name, on_alias, targets)
    output.line(f"policy of {name}: " + ", ".join(f"{k}={v}" for k, v in tags.items()))


@policy_app.command("run")
def policy_run(ctx: typer.Context) -> None:
    """Follow the log and build what the policies ask for, until Ctrl-C or SIGTERM. Starts
    at the head of the log the first time, then resumes where it stopped."""
    from ledgerflow.services.bundles.policy import PolicyRunner

    backend = state(ctx).embedded()
    backend.refresh()
    service = backend.bundles
    service.runtime.start()  # Ray installs its own SIGTERM handler: ours must come after
    runner = PolicyRunner(backend.log, service, backend.projector.engine)
    start = runner.cursor()  # pinned before saying so: aliases set from now on are seen
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    output.note(
        f"building bundles when policy aliases are set, after log position {start.encode()}; "
        "Ctrl-C or SIGTERM stops"
    )
    try:
        runner.run(stop)
    except KeyboardInterrupt:
        stop.set()
    output.note("bundle policy runner stopped")
