"""The typed bodies of the API's requests and responses (pydantic models).

They make the OpenAPI document at ``/docs`` and check what comes in; clients
can use them to parse what comes out.
"""

from __future__ import annotations

from typing import Any, Literal

from ._extra import missing_extra

try:
    from pydantic import BaseModel, ConfigDict, Field
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise missing_extra("pydantic") from error

__all__ = [
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "ModelInfo",
    "PixelsRequest",
    "PredictResponse",
    "PredictionResponse",
]

#: One grayscale image: rows of pixel values.
Image2D = list[list[float]]


class PixelsRequest(BaseModel):
    """``POST /v1/predict`` as JSON: one grayscale image, or a list of them, as numbers.

    ``pixels`` is one image (rows of values: ``[[0, 255, ...], ...]``) or a list
    of images (``[[[...]]]``), each of any size. Values run from 0 (black) to
    ``max_value`` (white): 255 (the default, as in 8-bit files and MNIST) or 1.
    A value outside that range, NaN or infinity is refused. An image that
    already has the model's input size (28x28 for MNIST models) is taken as
    prepared, as :func:`~digitrec.classify` takes arrays; any other is prepared
    as the model says.

    Example:
        >>> PixelsRequest(pixels=[[0, 255], [255, 0]]).max_value
        255
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"pixels": [[0, 0, 0], [0, 255, 0], [0, 0, 0]]}]},
    )

    pixels: Image2D | list[Image2D] = Field(
        description="one image as rows of values, or a list of such images"
    )
    max_value: Literal[255, 1] = Field(
        default=255, description="the value of white: 255 (8-bit scale) or 1"
    )


class PredictionResponse(BaseModel):
    """One image's answer, as :class:`~digitrec.Prediction`.

    Example:
        >>> PredictionResponse(class_index=7, label="7", probabilities=[0.0] * 7 + [1.0],
        ...                    confidence=1.0, out_of_distribution=None).label
        '7'
    """

    class_index: int = Field(description="the predicted class")
    label: str = Field(description="its name (the model's class name, or the index)")
    probabilities: list[float] = Field(description="every class's probability, in class order")
    confidence: float = Field(description="the predicted class's probability")
    out_of_distribution: bool | None = Field(
        description="whether the image is unlike the training data; null without OOD statistics"
    )


class PredictResponse(BaseModel):
    """``POST /v1/predict``'s answer: one prediction per image, in request order.

    Example:
        >>> PredictResponse(predictions=[]).predictions
        []
    """

    predictions: list[PredictionResponse]


class HealthResponse(BaseModel):
    """``GET /health``'s answer.

    Example:
        >>> HealthResponse(status="ok").status
        'ok'
    """

    status: Literal["ok"]


class ModelInfo(BaseModel):
    """``GET /v1/model``'s answer: what the served model is and records.

    Example:
        >>> info = ModelInfo(source="in-memory model", arch="mlp", input_shape=[1, 28, 28],
        ...                  num_classes=10, class_names=[str(i) for i in range(10)],
        ...                  prepare="digits", temperature=1.0, out_of_distribution=False,
        ...                  config={}, versions={}, header=None)
        >>> info.arch
        'mlp'
    """

    source: str = Field(description="the model file's name, the bundled model's, or in-memory")
    arch: str
    input_shape: list[int] = Field(description="(C, H, W) of one input")
    num_classes: int
    class_names: list[str]
    prepare: str = Field(description="how raw images are prepared: 'digits' or 'resize'")
    temperature: float = Field(description="the softmax temperature (calibration)")
    out_of_distribution: bool = Field(description="whether OOD statistics are fitted")
    config: dict[str, Any] = Field(description="the model's ModelConfig")
    versions: dict[str, str] = Field(description="versions of digitrec, torch and Python")
    header: dict[str, Any] | None = Field(
        description="a loaded file's header (digitrec.read_metadata); null for an in-memory model"
    )


class ErrorDetail(BaseModel):
    """What went wrong: the error's type and a message for people.

    Example:
        >>> ErrorDetail(type="DataFileError", message="not an image").type
        'DataFileError'
    """

    type: str
    message: str


class ErrorResponse(BaseModel):
    """Every 4xx (and, should it happen, 5xx) body: ``{"error": {"type", "message"}}``.

    Example:
        >>> ErrorResponse(error=ErrorDetail(type="Unauthorized", message="no key")).error.type
        'Unauthorized'
    """

    error: ErrorDetail
