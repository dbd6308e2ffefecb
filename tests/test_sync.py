"""The serving manifest, sync on a local registry, and the model card's content."""

from __future__ import annotations

import json

import pytest
import yaml

from regops import api
from regops.cli import main
from regops.publish import model_card
from regops.registry import Registry
from tests.conftest import Tree


def test_serving_export_names_prod_and_the_canary_with_its_traffic(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serving", "export", "--registry", str(tree.root)]) == 0
    manifest = json.loads(capsys.readouterr().out)
    sentiment = manifest["models"]["sentiment"]
    assert sentiment["prod"]["version"] == "1.2.0"
    assert sentiment["prod"]["storage"] == {"backend": "local"}
    recorded = Registry.load(tree.root).version("sentiment", "1.2.0").raw["artifacts"]["files"]
    assert sentiment["prod"]["files"] == [
        {"path": f["path"], "sha256": f["sha256"], "size": f["size"]} for f in recorded
    ]
    assert sentiment["canary"]["version"] == "1.3.0"
    assert sentiment["canary"]["traffic_percent"] == 5
    assert sentiment["canary"]["started_at"] == "2026-05-05T10:05:00Z"
    assert manifest["models"]["intent"]["canary"] is None

    out = tree.base / "serving.json"
    assert main(["serving", "export", "--registry", str(tree.root), "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == manifest


def test_sync_writes_the_manifest_once_and_check_catches_a_hand_edit(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--registry", str(tree.root)]
    assert main(["sync", "--check", *args]) == 1
    assert "serving.json: the serving manifest is missing" in capsys.readouterr().out
    assert not (tree.base / "serving.json").exists(), "--check writes nothing"

    assert main(["sync", *args]) == 0
    assert "fixed: serving.json: the serving manifest is missing" in capsys.readouterr().out
    assert main(["sync", *args]) == 0
    assert capsys.readouterr().out.startswith("in sync: nothing to change")

    manifest = tree.base / "serving.json"
    manifest.write_text(manifest.read_text().replace('"1.2.0"', '"1.3.0"', 1))
    assert main(["sync", "--check", "--json", *args]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(d["kind"], d["message"], d["fixable"]) for d in report["differences"]] == [
        ("manifest", "serving.json: the serving manifest differs from the registry", True)
    ]
    assert main(["sync", *args]) == 0
    assert json.loads(manifest.read_text())["models"]["sentiment"]["prod"]["version"] == "1.2.0"


def test_the_model_card_carries_eval_results_base_model_and_stages(tree: Tree) -> None:
    registry = Registry.load(tree.root)
    card = model_card(registry, "distilled")
    assert card == model_card(Registry.load(tree.root), "distilled"), "the same registry gives the same card"
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    record = registry.version("distilled", "1.0.0")
    assert meta["base_model"] == "acme-ml/sentiment", "a parent in another model is that model's Hub repo"
    assert meta["datasets"] == [record.dataset.split("@")[0]]
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    assert {m["type"]: m["value"] for m in metrics} == record.scores
    assert "| prod | 1.0.0 |" in body
    assert "sentiment@1.2.0" in body.split("## Lineage")[1], "the lineage reaches across models"

    # An external base is the Hub repo it names; a license the Hub does not know is `other` + its name.
    intent = yaml.safe_load(model_card(registry, "intent").split("---\n", 2)[1])
    assert intent["base_model"] == "distilbert/distilbert-base-uncased"
    tree.write("models/intent/model.yaml", tree.read("models/intent/model.yaml") + "license: proprietary\n")
    intent = yaml.safe_load(model_card(Registry.load(tree.root), "intent").split("---\n", 2)[1])
    assert (intent["license"], intent["license_name"]) == ("other", "proprietary")


def test_sync_of_an_unknown_model_is_an_error(tree: Tree) -> None:
    from regops.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="no model 'nope'"):
        api.sync(registry=tree.root, model="nope")


PROD_REVISION, CANARY_REVISION = "a" * 40, "b" * 40


def on_the_hub(tree: Tree) -> None:
    """sentiment's prod (1.2.0) and canary (1.3.0) weights on the Hub; intent's stay local."""
    for version, revision in (("1.2.0", PROD_REVISION), ("1.3.0", CANARY_REVISION)):
        tree.replace(
            f"models/sentiment/{version}.yaml",
            "storage: {backend: local, tier: hot}",
            f"storage: {{backend: hf, repo: acme-ml/sentiment, revision: {revision}, tier: hot}}",
        )


def kserve(tree: Tree, capsys: pytest.CaptureFixture[str]) -> tuple[str, list[dict[str, object]]]:
    assert main(["serving", "export", "--format", "kserve", "--registry", str(tree.root)]) == 0
    text = capsys.readouterr().out
    return text, [doc for doc in yaml.safe_load_all(text) if doc]


def test_kserve_export_names_the_canary_weights_and_its_share_of_traffic(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    on_the_hub(tree)
    text, [service] = kserve(tree, capsys)
    assert service == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "sentiment",
            "labels": {"app.kubernetes.io/managed-by": "regops"},
            "annotations": {"regops.dev/prod-version": "1.2.0", "regops.dev/canary-version": "1.3.0"},
        },
        "spec": {
            "predictor": {
                "canaryTrafficPercent": 5,
                "model": {
                    "modelFormat": {"name": "huggingface"},
                    "storageUri": f"hf://acme-ml/sentiment:{CANARY_REVISION}",
                },
            }
        },
    }
    assert text.startswith(
        "# distilled: weights not on the Hub; KServe needs an hf:// storageUri\n"
        "# intent: weights not on the Hub; KServe needs an hf:// storageUri\n"
    ), text


def test_kserve_export_without_a_live_canary_serves_prod_alone(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    on_the_hub(tree)
    tree.replace("models/sentiment/1.3.0.yaml", "result: pending", "result: failed")
    _, [service] = kserve(tree, capsys)
    predictor = service["spec"]["predictor"]  # type: ignore[index]
    assert predictor == {
        "model": {"modelFormat": {"name": "huggingface"}, "storageUri": f"hf://acme-ml/sentiment:{PROD_REVISION}"}
    }
    assert service["metadata"]["annotations"] == {"regops.dev/prod-version": "1.2.0"}  # type: ignore[index]


NUMBER_LIKE_NAMES = ["1e5", "0o17", "1e-3", "1_0e5", "0b101", "12e3"]


def rename_model(tree: Tree, old: str, new: str) -> None:
    """``old`` renamed ``new`` everywhere a registry names it (quoted: the files say it is text)."""
    (tree.root / "models" / old).rename(tree.root / "models" / new)
    for path in sorted((tree.root / "models" / new).glob("*.yaml")):
        field = "name" if path.name == "model.yaml" else "model"
        tree.replace(path.relative_to(tree.root).as_posix(), f"{field}: {old}\n", f'{field}: "{new}"\n')


def both_readers(text: str) -> list[list[object]]:
    """The YAML documents of ``text`` as a YAML 1.1 reader (PyYAML) and a YAML 1.2 reader (ruamel) see them."""
    from ruamel.yaml import YAML

    return [[d for d in yaml.safe_load_all(text) if d], [d for d in YAML(typ="safe").load_all(text) if d]]


@pytest.mark.parametrize("name", NUMBER_LIKE_NAMES)
def test_a_number_like_model_name_stays_text_in_the_kserve_export(
    tree: Tree, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    on_the_hub(tree)
    rename_model(tree, "sentiment", name)
    assert main(["serving", "export", "--format", "kserve", "--registry", str(tree.root)]) == 0
    text = capsys.readouterr().out

    for documents in both_readers(text):
        [service] = documents
        assert service["metadata"]["name"] == name  # type: ignore[index]


@pytest.mark.parametrize("name", NUMBER_LIKE_NAMES)
def test_a_number_like_model_name_stays_text_in_the_model_card(tree: Tree, name: str) -> None:
    rename_model(tree, "sentiment", name)
    card = model_card(Registry.load(tree.root), name)
    front = card.split("---\n", 2)[1]

    for [meta] in both_readers(front):
        assert meta["model-index"][0]["name"] == name  # type: ignore[index]
    assert f"# {name}\n" in card
