"""Bundle logic without Ray or a store: parity math, manifests, policies, payloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ledgerflow.events.bundle_payloads import BundleBuilt, BundleFailed, BundleRequested
from ledgerflow.events.codec import REGISTRY
from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.bundles.policy import (
    ON_ALIAS_TAG,
    TARGETS_TAG,
    Policy,
    policy_from_tags,
    policy_tags,
    wants_build,
)
from ledgerflow.services.bundles.service import check_targets
from ledgerflow.workers.bundles import parity, serving
from ledgerflow.workers.bundles.build import source_flavor
from ledgerflow.workers.bundles.convert import ConversionFailed
from ledgerflow.workers.bundles.manifest import TensorInfo, build_manifest, sha256_of, verify
from ledgerflow.workers.bundles.parity import ParityError, Tolerance


def test_max_abs_diff_is_the_largest_elementwise_gap_and_inf_for_other_shapes() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    b = a + np.array([[0.0, 1e-3], [-2e-3, 0.0]], dtype=np.float32)
    assert parity.max_abs_diff(a, b) == pytest.approx(2e-3, rel=1e-3)
    assert parity.max_abs_diff(a, a[:1]) == float("inf")
    assert parity.max_abs_diff(np.array(["a"]), np.array(["a"])) == 0.0


def test_floats_pass_within_the_tolerances_and_labels_must_be_equal() -> None:
    tol = Tolerance(rtol=1e-3, atol=1e-6)
    x = np.array([100.0, 0.0])
    assert parity.within(x, x + np.array([0.05, 0.0]), tol)
    assert not parity.within(x, x + np.array([0.5, 0.0]), tol)
    assert not parity.within(x, x + np.array([0.0, 1e-5]), tol)  # atol governs near zero
    assert parity.within(np.array([1, 2]), np.array([1, 2]), tol)
    assert not parity.within(np.array([1, 2]), np.array([1, 3]), tol)


def test_check_records_the_worst_difference_over_all_inputs() -> None:
    inputs = [np.zeros((2, 3), np.float32), np.ones((5, 3), np.float32)]

    def original(x: np.ndarray) -> np.ndarray:
        return x.sum(axis=1)

    def bundle(x: np.ndarray) -> np.ndarray:
        return (x.sum(axis=1) + 1e-6 * len(x)).reshape(-1, 1)  # (n, 1) is the same answer

    record = parity.check(original, bundle, inputs, Tolerance(rtol=0, atol=1e-5))
    assert record["max_abs_diff"] == pytest.approx(5e-6, rel=1e-2)
    assert record["inputs"] == 2 and record["passed"] is True
    assert record["atol"] == 1e-5 and record["rtol"] == 0


def test_check_names_the_input_that_breaks_parity() -> None:
    inputs = [np.zeros((1, 2)), np.ones((7, 2))]
    with pytest.raises(ParityError, match=r"input 1 \(shape \(7, 2\)\).*max \|diff\| 1"):
        parity.check(lambda x: x, lambda x: np.where(x > 0, x + 1, x), inputs, Tolerance())
    with pytest.raises(ParityError, match=r"outputs \(7, 2\) vs \(1, 2\)"):
        parity.check(lambda x: x, lambda x: x[:1], [np.ones((7, 2))], Tolerance())


def test_generated_inputs_vary_the_batch_and_keep_the_example_shape_dtype_and_range() -> None:
    example = np.array([[0.5, 2.0, 3.0], [1.0, 4.0, 6.0]], dtype=np.float32)
    made = parity.generated_inputs(example, count=3)
    assert [m.shape for m in made] == [(1, 3), (7, 3), (64, 3)]
    assert all(m.dtype == np.float32 for m in made)
    assert all(m.min() >= 0.5 and m.max() <= 6.0 for m in made)
    ints = parity.generated_inputs(np.array([[1, 5]], dtype=np.int64), count=1)[0]
    assert ints.dtype == np.int64 and ints.min() >= 1 and ints.max() <= 5
    with pytest.raises(ParityError, match="scalar"):
        parity.generated_inputs(np.float32(1.0))  # type: ignore[arg-type]


def test_the_manifest_lists_every_file_with_size_and_sha256_and_detects_changes(
    tmp_path: Path,
) -> None:
    (tmp_path / "model.onnx").write_bytes(b"\x00onnx")
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "saved_model.pb").write_bytes(b"pb" * 10)
    manifest = build_manifest(
        tmp_path, bundle_id="b", target="onnx",
        source={"name": "m", "version": 1}, runtime={"name": "onnxruntime", "version": "1"},
        inputs=[TensorInfo("input", "float32", (-1, 4))],
        outputs=[TensorInfo("output", "float32", (-1,))],
        parity={"max_abs_diff": 0.0}, entrypoint="serve.py",
    )  # fmt: skip
    assert manifest["files"] == [
        {
            "path": "m/1/saved_model.pb",
            "size": 20,
            "sha256": sha256_of(tmp_path / "m/1/saved_model.pb"),
        },
        {"path": "model.onnx", "size": 5, "sha256": sha256_of(tmp_path / "model.onnx")},
    ]
    assert manifest["size_bytes"] == 25
    assert manifest["inputs"] == [{"name": "input", "dtype": "float32", "shape": [-1, 4]}]
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert verify(tmp_path) == []
    (tmp_path / "model.onnx").write_bytes(b"\x00onnX")
    (tmp_path / "extra.txt").write_text("x")
    (tmp_path / "m" / "1" / "saved_model.pb").unlink()
    assert verify(tmp_path) == [
        "missing m/1/saved_model.pb", "unlisted extra.txt", "changed model.onnx"
    ]  # fmt: skip


def test_serving_files_pin_the_runtime_and_the_server_is_valid_python(tmp_path: Path) -> None:
    import ast

    entry = serving.write_python_server(tmp_path, "onnx", [serving.pinned("onnxruntime")])
    assert entry == "serve.py"
    ast.parse((tmp_path / "serve.py").read_text())
    reqs = (tmp_path / "requirements.txt").read_text().split()
    assert reqs[0].startswith("numpy==") and reqs[1].startswith("onnxruntime==")
    assert 'CMD ["python", "serve.py"]' in (tmp_path / "Dockerfile").read_text()
    tf = tmp_path / "tf"
    tf.mkdir()
    serving.write_tf_serving(tf, "iris")
    docker = (tf / "Dockerfile").read_text()
    assert docker.startswith("FROM tensorflow/serving:") and "ENV MODEL_NAME=iris" in docker


def test_the_source_flavor_is_the_first_convertible_one_or_a_reason() -> None:
    assert source_flavor({"python_function": {}, "sklearn": {}}) == "sklearn"
    assert source_flavor({"python_function": {}, "keras": {}}) == "keras"
    with pytest.raises(
        ConversionFailed, match=r"no converter for a model with flavors \['python_function'\]"
    ):
        source_flavor({"python_function": {}})


def test_targets_are_checked_deduplicated_and_named_when_unknown() -> None:
    assert check_targets(None) is None
    assert check_targets(["ONNX", "onnx", "torchscript"]) == ["onnx", "torchscript"]
    assert check_targets("onnx,savedmodel") == ["onnx", "savedmodel"]
    with pytest.raises(InvalidInput, match=r"\['tflite'\]: choose from onnx, torchscript"):
        check_targets(["onnx", "tflite"])
    with pytest.raises(InvalidInput, match="choose from"):
        check_targets([])


def test_a_policy_round_trips_through_model_tags_and_triggers_only_on_its_aliases() -> None:
    tags = policy_tags(["champion", "prod"], ["onnx"])
    assert tags == {ON_ALIAS_TAG: "champion,prod", TARGETS_TAG: "onnx"}
    policy = policy_from_tags(tags)
    assert policy == Policy(frozenset({"champion", "prod"}), ["onnx"])
    assert wants_build(policy, "prod") and not wants_build(policy, "staging")
    assert policy_from_tags({ON_ALIAS_TAG: "champion"}) == Policy(frozenset({"champion"}), None)
    assert policy_from_tags({"team": "x"}) is None
    assert not wants_build(None, "champion")
    with pytest.raises(InvalidInput, match="at least one alias"):
        policy_tags([], None)


def test_setting_a_policy_replaces_the_old_one_and_clearing_deletes_only_its_tags() -> None:
    from ledgerflow.events import bundle_commands as bc
    from ledgerflow.events import model_payloads as m
    from ledgerflow.events.entities import RegisteredModel
    from ledgerflow.services.bundles.decide import decide_clear_policy, decide_set_policy

    def model(tags: dict[str, str]) -> RegisteredModel:
        return RegisteredModel("iris", 1, 1, "", tags=tags)

    old = model({ON_ALIAS_TAG: "prod", TARGETS_TAG: "onnx", "team": "cv"})
    events = decide_set_policy(old, bc.SetBundlePolicy(name="iris", on_alias="champion"))
    assert events == [
        m.RegisteredModelTagSet(name="iris", key=ON_ALIAS_TAG, value="champion"),
        m.RegisteredModelTagDeleted(name="iris", key=TARGETS_TAG),
    ]
    with pytest.raises(InvalidInput, match=r"\['tflite'\]") as e:
        decide_set_policy(old, bc.SetBundlePolicy(name="iris", on_alias=["a"], targets="tflite"))
    assert e.value.field == "targets"
    assert decide_clear_policy(old) == [
        m.RegisteredModelTagDeleted(name="iris", key=ON_ALIAS_TAG),
        m.RegisteredModelTagDeleted(name="iris", key=TARGETS_TAG),
    ]
    assert decide_clear_policy(model({"team": "cv"})) == []


def test_bundle_events_live_on_their_own_stream_and_are_registered() -> None:
    req = BundleRequested(id="b1", name="m", version=2, target="onnx", source="/x")
    assert req.stream() == "bundle:b1"
    for cls in (BundleRequested, BundleBuilt, BundleFailed):
        assert REGISTRY.payload_class(cls.TYPE) is cls
    with pytest.raises(ValueError):
        BundleRequested(id="b1", name="m", version=2, target="tflite", source="/x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        BundleFailed(id="b1", reason="")
