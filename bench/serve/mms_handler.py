"""The multi-model-server handler for bench/serve/run.py, through sagemaker-inference (not shipped).

The stack of SageMaker's Neo PyTorch images: MMS calls `handle(data, context)`; sagemaker-inference's
`DefaultHandlerService` runs its `Transformer`, which decodes each request and calls the inference
handler's `model_fn`, `input_fn`, `predict_fn` and `output_fn` (https://github.com/aws/sagemaker-inference-toolkit,
README "Implementation Steps"). Those are written here over `anchor_model.py`, the model side shared with
the TorchServe handler (an extra file of the archive, on `sys.path` in the model directory).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from anchor_model import NcfModel
from sagemaker_inference import errors
from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
from sagemaker_inference.transformer import Transformer


class NcfInferenceHandler(DefaultInferenceHandler):
    def default_model_fn(self, model_dir: str, context: Any = None) -> NcfModel:
        return NcfModel(Path(model_dir), int(os.environ.get("NCF_TORCH_THREADS", "1")))

    def default_input_fn(self, input_data: Any, content_type: str, context: Any = None) -> Any:
        return json.loads(input_data)

    def default_predict_fn(self, data: Any, model: NcfModel, context: Any = None) -> dict[str, Any]:
        try:
            return model.answer(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.GenericInferenceToolkitError(400, f"{type(exc).__name__}: {exc}") from None

    def default_output_fn(self, prediction: Any, accept: str, context: Any = None) -> str:
        return json.dumps(prediction)


_service = DefaultHandlerService(transformer=Transformer(default_inference_handler=NcfInferenceHandler()))


def handle(data: Any, context: Any) -> Any:
    if data is None:  # MMS's call at model load: load the model now, not on the first request
        _service.initialize(context)
        return None
    return _service.handle(data, context)
