"""The seed walkthrough's code, with `lf` where it says `mlflow`, runs as written.

Fashion-MNIST needs a download, so the same Keras CNN trains on scikit-learn's
8x8 digits; every MLflow call of the walkthrough is kept, including the older
`artifact_path=` and `run.info.run_uuid`.
"""

import subprocess
import textwrap

import pytest

from tests.conftest import PYTHON, ROOT, python_env

pytestmark = pytest.mark.slow

SEED = textwrap.dedent("""
    import keras
    import numpy as np
    from keras.layers import Conv2D, MaxPooling2D, Flatten, Dense
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    images = (x / 16.0).reshape(-1, 8, 8, 1).astype("float32")
    labels = keras.utils.to_categorical(y, 10)
    train_images, test_images = images[:1400], images[1400:]
    train_labels, test_labels = labels[:1400], labels[1400:]

    # 2. Build & Train Keras CNN Model
    model = keras.models.Sequential()
    model.add(keras.Input((8, 8, 1)))
    model.add(Conv2D(32, 3, activation='relu'))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Flatten())
    model.add(Dense(10, activation='softmax'))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(train_images, train_labels, epochs=2, validation_data=(test_images, test_labels),
              verbose=0)

    # 3. Evaluate Model Metrics
    test_loss, test_accuracy = model.evaluate(test_images, test_labels, verbose=0)

    # 4. Log the run
    import ledgerflow as mlflow
    import ledgerflow.tensorflow

    with mlflow.start_run() as run:
        mlflow.tensorflow.log_model(model, artifact_path="cnn-fashion")
        mlflow.log_param("epochs", 5)
        mlflow.log_metric("test_loss", test_loss)
        mlflow.log_metric("test_accuracy", test_accuracy)
        run_id = run.info.run_uuid

    # 5. Register Model with Registry
    mlflow.register_model(f"runs:/{run_id}/cnn-fashion", "cnn-fashion-model")

    # Querying Model Registry
    from ledgerflow.tracking import MlflowClient
    client = MlflowClient()
    model_version_details = client.get_model_version(name="cnn-fashion-model", version=1)

    # Load it back anywhere as a generic predictor
    import ledgerflow.pyfunc
    loaded = ledgerflow.pyfunc.load_model("models:/cnn-fashion-model/1")
    same = np.allclose(loaded.predict(test_images), model.predict(test_images, verbose=0),
                       atol=1e-5)
    print(model_version_details.version, model_version_details.run_id == run_id, same,
          client.get_run(run_id).data.params["epochs"], round(test_accuracy, 3))
""")


def test_the_seed_walkthrough_runs_with_lf_in_place_of_mlflow(tmp_path):
    out = subprocess.run(
        [PYTHON, "-c", SEED],
        env=python_env(tmp_path / "data"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    version, same_run, same_predictions, epochs, accuracy = out.stdout.split()
    assert version == "1" and same_run == "True" and same_predictions == "True"
    assert epochs == "5" and float(accuracy) > 0.5
