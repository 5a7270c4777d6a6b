"""The pydantic request and response models of ``engine serve`` (its OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PredictRequest(BaseModel):
    """One raw sample or a batch, shaped like the model's input (see GET /metadata and docs/plugins/deploy.md)."""

    inputs: list[Any] = Field(description="one raw sample (nested list shaped like the input) or a batch of them")
    top_k: int = Field(3, ge=1, description="labels to return per sample (classification)")
    preprocessed: bool = Field(False, description="the inputs are already as the model sees them (normalised)")


class Label(BaseModel):
    label: str
    index: int
    probability: float


class Detection(BaseModel):
    label: str
    index: int
    score: float
    box: list[float] = Field(description="[x1, y1, x2, y2] in pixels of the model's input")


class Prediction(BaseModel):
    label: str | None = Field(None, description="most probable class (classification)")
    index: int | None = None
    probability: float | None = None
    top: list[Label] | None = Field(None, description="the top_k classes, most probable first")
    value: Any = Field(None, description="predicted value(s) (regression), in the shape the model returns")
    labels: list[str] | None = Field(None, description="labels with probability >= 0.5 (multi-label)")
    detections: list[Detection] | None = Field(None, description="boxes, best score first (detection runs)")


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    warnings: list[str] | None = Field(None, description="inputs far outside the training data")


class ErrorResponse(BaseModel):
    detail: str
