"""ledgerflow.spacy: MLflow's spacy flavor layout written by spaCy's own `to_disk` (never
pickle), pyfunc categories and entities over a column of texts, interchange with the real
`mlflow.spacy` both ways, and a registered version served by `ledgerflow serve`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import mlflow.pyfunc
import mlflow.spacy
import pandas as pd
import pytest
import spacy
import yaml
from spacy.language import Language
from spacy.training import Example

import ledgerflow as lf
from ledgerflow import pyfunc
from ledgerflow import spacy as lf_spacy
from ledgerflow.events.errors import InvalidInput
from ledgerflow.flavors import flavor_of
from ledgerflow.models import Model
from tests.conftest import PYTHON
from tests.e2e.test_cli import cli_env
from tests.e2e.test_serve_process import serving_all

REVIEWS = [
    ("I love this film", "POS"),
    ("a great and wonderful story", "POS"),
    ("what a happy ending", "POS"),
    ("awful and terrible acting", "NEG"),
    ("I hate this film", "NEG"),
    ("a sad and boring plot", "NEG"),
]
FRUIT = [
    ("I ate an apple today", [(9, 14, "FRUIT")]),
    ("bananas are yellow", [(0, 7, "FRUIT")]),
    ("she bought a mango and a pear", [(13, 18, "FRUIT"), (25, 29, "FRUIT")]),
    ("the car is red", []),
]
TEXTS = pd.DataFrame({"text": ["I love this story", "a terrible plot", "an apple and a pear"]})


@pytest.fixture(scope="module")
def textcat() -> Language:
    """A blank English pipeline with a bag-of-words text categorizer, trained a little."""
    nlp = spacy.blank("en")
    model = {"@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": True,
             "ngram_size": 1, "no_output_layer": False}  # fmt: skip
    nlp.add_pipe("textcat", config={"model": model})
    examples = [
        Example.from_dict(nlp.make_doc(text), {"cats": {"POS": label == "POS",
                                                        "NEG": label == "NEG"}})
        for text, label in REVIEWS
    ]  # fmt: skip
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(10):
        nlp.update(examples, sgd=optimizer)
    return nlp


@pytest.fixture(scope="module")
def ner() -> Language:
    """A blank English pipeline with an entity recognizer that has learnt its few examples."""
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": ents}) for t, ents in FRUIT]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(30):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


def _cats(nlp: Language, texts: pd.DataFrame) -> list[dict[str, float]]:
    return [nlp(text).cats for text in texts["text"]]


def _ents(nlp: Language, texts: pd.DataFrame) -> list[list[tuple[str, str, int, int]]]:
    return [[(e.text, e.label_, e.start_char, e.end_char) for e in nlp(text).ents]
            for text in texts["text"]]  # fmt: skip


def test_a_text_categorizer_round_trips_as_spacys_own_pipeline_directory(
    tmp_path: Path, textcat: Language
) -> None:
    lf_spacy.save_model(textcat, tmp_path / "m", input_example=TEXTS.head(2))
    conf = Model.load(tmp_path / "m").flavors
    assert conf["spacy"]["data"] == conf["python_function"]["data"] == "model.spacy"
    assert conf["spacy"]["spacy_version"] == spacy.about.__version__
    assert conf["python_function"]["loader_module"] == "mlflow.spacy"
    assert (tmp_path / "m" / "model.spacy" / "config.cfg").is_file()
    assert not list((tmp_path / "m").rglob("*.pkl"))
    reqs = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert reqs == [f"spacy=={spacy.about.__version__}"]
    loaded = lf_spacy.load_model(tmp_path / "m")
    assert isinstance(loaded, Language) and loaded.pipe_names == ["textcat"]
    assert _cats(loaded, TEXTS) == _cats(textcat, TEXTS)
    model = pyfunc.load_model(tmp_path / "m")
    assert model.metadata.signature.inputs.input_names() == ["text"]
    out = model.predict(TEXTS)
    assert list(out.columns) == ["predictions"]
    assert out["predictions"].tolist() == _cats(textcat, TEXTS)


def test_an_entity_recognizer_is_served_with_its_entities(tmp_path: Path, ner: Language) -> None:
    expected = _ents(ner, TEXTS)
    assert ("apple", "FRUIT", 3, 8) in expected[2]  # it learnt something to compare
    lf.save_model(ner, tmp_path / "n")  # the flavor read off the pipeline
    flavors = Model.load(tmp_path / "n").flavors
    assert flavors["python_function"]["loader_module"] == "ledgerflow.spacy"  # MLflow has none
    out = pyfunc.load_model(tmp_path / "n").predict(TEXTS)
    assert list(out.columns) == ["entities"]
    assert out["entities"].tolist() == expected
    assert pyfunc.load_model(tmp_path / "n").predict(["an apple"])["entities"].tolist() == [
        _ents(ner, pd.DataFrame({"text": ["an apple"]}))[0]
    ]


def test_a_pipeline_with_categories_and_entities_answers_both(tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("textcat_multilabel").add_label("FOOD")
    nlp.initialize()
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "FRUIT", "pattern": "kiwi"}])
    lf_spacy.save_model(nlp, tmp_path / "both")
    assert Model.load(tmp_path / "both").flavors["python_function"]["loader_module"] == (
        "mlflow.spacy"
    )
    out = pyfunc.load_model(tmp_path / "both").predict(pd.Series(["a kiwi", "no"], name="t"))
    assert list(out.columns) == ["predictions", "entities"]
    assert out["entities"].tolist() == [[("kiwi", "FRUIT", 2, 6)], []]
    assert out["predictions"].tolist() == [nlp("a kiwi").cats, nlp("no").cats]


def test_mlflow_loads_ours_and_we_load_mlflows(
    tmp_path: Path, textcat: Language, ner: Language
) -> None:
    lf_spacy.save_model(textcat, tmp_path / "ours")
    theirs = mlflow.spacy.load_model(str(tmp_path / "ours"))
    assert _cats(theirs, TEXTS) == _cats(textcat, TEXTS)
    pred = mlflow.pyfunc.load_model(str(tmp_path / "ours")).predict(TEXTS)
    assert pred["predictions"].tolist() == _cats(textcat, TEXTS)
    lf_spacy.save_model(ner, tmp_path / "ours-ner")
    assert _ents(mlflow.spacy.load_model(str(tmp_path / "ours-ner")), TEXTS) == _ents(ner, TEXTS)

    # requirements given: MLflow would infer them by loading the model in a subprocess (slow)
    mlflow.spacy.save_model(textcat, str(tmp_path / "mlflow"), pip_requirements=["spacy"])
    ours = lf_spacy.load_model(tmp_path / "mlflow")
    assert _cats(ours, TEXTS) == _cats(textcat, TEXTS)
    ours_pred = pyfunc.load_model(tmp_path / "mlflow").predict(TEXTS)
    assert ours_pred["predictions"].tolist() == pred["predictions"].tolist()
    mlflow.spacy.save_model(ner, str(tmp_path / "mlflow-ner"), pip_requirements=["spacy"])
    assert "python_function" not in Model.load(tmp_path / "mlflow-ner").flavors
    assert _ents(lf_spacy.load_model(tmp_path / "mlflow-ner"), TEXTS) == _ents(ner, TEXTS)


def test_what_is_not_a_pipeline_or_not_texts_is_refused_by_name(
    tmp_path: Path, textcat: Language
) -> None:
    with pytest.raises(InvalidInput, match="saves a spacy.language.Language .* not builtins.str"):
        lf_spacy.save_model("en_core_web_sm", tmp_path / "a")
    assert flavor_of(textcat) == "spacy"
    lf_spacy.save_model(textcat, tmp_path / "m")
    model = pyfunc.load_model(tmp_path / "m")
    with pytest.raises(InvalidInput, match=r"column 'n' holds int 3 at row 0; .* texts"):
        model.predict(pd.DataFrame({"n": [3, 4]}))
    with pytest.raises(InvalidInput, match=r"one column of texts; got the columns \['a', 'b'\]"):
        model.predict(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    with pytest.raises(InvalidInput, match="not builtins.dict"):
        model.predict({"text": "x"})
    (tmp_path / "m" / "model.spacy" / "config.cfg").unlink()
    with pytest.raises(InvalidInput, match="has no pipeline directory 'model.spacy'"):
        lf_spacy.load_model(tmp_path / "m")


def test_logged_registered_loaded_in_a_fresh_process_and_served(
    tracking: Path, tmp_path: Path, textcat: Language, ner: Language
) -> None:
    conda = {"name": "ner-env", "dependencies": ["python=3.11", "pip", {"pip": ["spacy"]}]}
    with lf.start_run():
        info = lf.log_model(textcat, name="model", input_example=TEXTS.head(2),
                            pip_requirements=["spacy>=3.8.2"],
                            registered_model_name="reviews-spacy")  # fmt: skip
        ner_info = lf_spacy.log_model(ner, name="ner", conda_env=conda,
                                      registered_model_name="fruit-spacy")  # fmt: skip
    assert (info.registered_model_version, ner_info.registered_model_version) == (1, 1)
    assert "spacy" in info.flavors and "spacy" in ner_info.flavors
    local = Path(lf.Client().download_artifacts(ner_info.run_id, "ner", str(tmp_path / "dl")))
    assert yaml.safe_load((local / "conda.yaml").read_text()) == conda
    script = (
        "import ledgerflow as lf, json, sys;"
        "texts = json.load(sys.stdin);"
        "nlp = lf.spacy.load_model('reviews-spacy', version=1);"
        "ner = lf.spacy.load_model('fruit-spacy', version=1);"
        "print(json.dumps([[nlp(t).cats for t in texts],"
        " [[(e.text, e.label_, e.start_char, e.end_char) for e in ner(t).ents] for t in texts]]))"
    )
    fresh = subprocess.run(
        [PYTHON, "-c", script], input=json.dumps(TEXTS["text"].tolist()), capture_output=True,
        text=True, env=cli_env(tracking), timeout=120,
    )  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    cats, ents = json.loads(fresh.stdout)
    assert cats == _cats(textcat, TEXTS)
    assert ents == [[list(e) for e in row] for row in _ents(ner, TEXTS)]
    lf.flush()
    logs = tmp_path / "serve-textcat.log", tmp_path / "serve-ner.log"
    with serving_all(tracking, (logs[0], ["-m", "models:/reviews-spacy/1"]),
                     (logs[1], ["-m", "models:/fruit-spacy/1"])) as [url, ner_url]:  # fmt: skip
        body = {"dataframe_split": TEXTS.to_dict(orient="split")}
        r = httpx.post(url + "/invocations", json=body, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": [{"predictions": c} for c in _cats(textcat, TEXTS)]}
        r = httpx.post(ner_url + "/invocations", json=body, timeout=30)
        assert r.status_code == 200, r.text
        served = [row["entities"] for row in r.json()["predictions"]]
        assert served == [[list(e) for e in row] for row in _ents(ner, TEXTS)]
        bad = httpx.post(url + "/invocations", json={"inputs": [[1, 2]]}, timeout=30)
        assert bad.status_code == 400, bad.text
        bad = httpx.post(ner_url + "/invocations", json={"inputs": [1, 2]}, timeout=30)
        assert bad.status_code == 400 and "holds int" in bad.text, bad.text
