"""A KServe model server (V2 / Open Inference Protocol) serving a scikit-learn model trained on breast_cancer.

Third-party code under test for chaosml's "bring your own stack" (not part of chaosml): run it with
an interpreter that has ``kserve``, ``scikit-learn`` and ``joblib``::

    python experiments/servers/kserve_sklearn.py --http_port 8080 --model_file /tmp/bc.joblib

The model is trained once (logistic regression on all 30 features, seeded) and saved with joblib
to ``--model_file`` (atomically, so replicas starting together agree), then loaded. Responses carry
two outputs: ``predict`` (the class) and ``probabilities`` (one row of class probabilities), and the
model version as ``model_version``. It does not say which serving path answered (no served_by).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from typing import Any

import joblib
import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server

MODEL_NAME = "breast-cancer"
MODEL_VERSION = "sklearn-logreg-v1"


def train(path: str) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0))
    model.fit(data.data, data.target)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)) or ".", suffix=".tmp")
    os.close(fd)
    joblib.dump(model, tmp)
    os.replace(tmp, path)


class BreastCancerModel(Model):
    def __init__(self, name: str, model_file: str) -> None:
        super().__init__(name)
        self.model_file = model_file
        self.model: Any = None

    def load(self) -> bool:
        if not os.path.exists(self.model_file):
            train(self.model_file)
        self.model = joblib.load(self.model_file)
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        x = np.asarray(payload.inputs[0].data, dtype=np.float64).reshape(-1, 30)  # a wrong shape is an error (4xx/5xx)
        proba = self.model.predict_proba(x)
        pred = proba.argmax(axis=1)
        outputs = [
            InferOutput(name="predict", shape=[len(pred)], datatype="INT64", data=[int(v) for v in pred]),
            InferOutput(name="probabilities", shape=list(proba.shape), datatype="FP64", data=[float(v) for v in proba.ravel()]),
        ]
        return InferResponse(model_name=self.name, infer_outputs=outputs, response_id=payload.id or str(uuid.uuid4()),
                             model_version=MODEL_VERSION)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_file", default=os.environ.get("MODEL_FILE", "breast_cancer.joblib"))
    args, _ = parser.parse_known_args()
    m = BreastCancerModel(MODEL_NAME, args.model_file)
    m.load()
    ModelServer(enable_grpc=False, workers=1).start([m])
