"""Request and response shapes of the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from model import GATES


class TellingUnit(BaseModel):
    """A unit whose role was measured on held-out data, and the measure."""

    model_config = ConfigDict(extra="allow")

    layer: int = Field(description="the unit's layer")
    unit: int = Field(description="the unit's index in its layer")
    feature: str | None = Field(default=None, description="the feature it tracks (code: in_string, indent, ...)")
    r: float | None = Field(default=None, description="its correlation with the feature (or depth)")
    separation: float | None = Field(default=None, description="recall: how well its cell state tells symbols apart")
    mean_forget: float | None = Field(
        default=None, description="recall: its mean forget gate over the gap; adding: over the unmarked steps"
    )
    gate: str | None = Field(default=None, description="the gate r is of (c: the cell state; i: the input gate)")


class Output(BaseModel):
    """What a model's output head predicts (model/heads.py)."""

    kind: Literal["next", "classes", "values"] = Field(
        description='"next": the next token (a language model); "classes": class probabilities; '
        '"values": real numbers (regression, e.g. a forecast)'
    )
    at: Literal["every", "last"] = Field(
        description='"every": each step\'s prediction counts; "last": only the last step\'s (a sequence classifier or '
        "regressor: earlier steps show what it would answer if the input stopped there)"
    )
    size: int = Field(description="K, the number of outputs (the vocabulary's size for a next-token head)")
    labels: list[str] | None = Field(
        description="a name per output for classes and values heads; null for a next-token head (its vocabulary)"
    )


class ModelCard(BaseModel):
    """What a model is and what it learned: its shape, its input, and its telling units."""

    id: str = Field(description="the model's id: pass it as 'model' to /api/trace and /api/live")
    available: bool = Field(default=True, description="false: listed, but its files or card do not read")
    problem: str | None = Field(default=None, description="why an unavailable model cannot be used")
    cell: str | None = Field(default=None, description=" | ".join(f'"{kind}"' for kind in GATES))
    layers: int | None = Field(default=None, description="stacked recurrent layers")
    hidden_size: int | None = Field(default=None, description="units H in each layer (in each direction)")
    direction: str = Field(default="forward", description='"forward", "reverse" or "bidirectional" (every layer)')
    directions: list[str] = Field(
        default=["forward"], description='the direction of each block of hidden_size units: "forward" | "backward"'
    )
    units: int | None = Field(default=None, description="units of each layer's trace arrays: H, or 2H bidirectional")
    proj_size: int | None = Field(
        default=None,
        description="an LSTM with proj_size: its h = W_hr (o * tanh C) has these P < H units; m is o * tanh C",
    )
    input: str | None = Field(default=None, description='"text" or "vectors"')
    gates: list[str] = Field(default=[], description="gate keys in diagram order")
    vocab: int | None = Field(default=None, description="vocabulary size, for text models")
    tokenizer: str | None = Field(
        default=None, description='"char", "word" or "hf" (a Hugging Face tokenizer.json), for text models'
    )
    tokenizer_options: dict[str, Any] | None = Field(
        default=None,
        description="word: the options from the vocabulary file (lowercase, split_punct, strip_punct, eol); "
        "hf: its model (BPE, WordPiece, Unigram; byte-level) and unknown token",
    )
    input_size: int | None = Field(default=None, description="size of each input vector, for vector models")
    head: bool = Field(default=False, description="whether the model has an output head (see 'output' for its kind)")
    output: Output | None = Field(default=None, description="what the output head predicts; null without one")
    origin: str = Field(default="bundled", description='"bundled" or "uploaded" (only uploaded models can be deleted)')
    description: str = Field(default="", description="what the model was trained on, in a sentence")
    examples: list[str] = Field(default=[], description="texts worth tracing")
    metrics: dict[str, float | int | str] = Field(
        default={}, description="held-out scores, e.g. bits_per_char or accuracy"
    )
    telling_units: dict[str, TellingUnit | list[TellingUnit]] = Field(
        default={}, description="units whose role was measured, by role (code: a list under 'features')"
    )
    command: str | None = Field(default=None, description="the command that trained the model")


class InterventionBody(BaseModel):
    """Hold, scale, zero or patch units of one gate over a range of steps (model/interventions.py)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    layer: int = Field(strict=True, description="the layer, from 0")
    unit: int | None = Field(default=None, strict=True, description="one unit (or give 'units')")
    units: list[int] | None = Field(default=None, strict=True, description="several units (or give 'unit')")
    gate: str = Field(description='"c" (the cell state), "h", or any gate key of the model (its card\'s "gates")')
    op: Literal["set", "scale", "zero", "patch"] = Field(
        description='"set": the value becomes "value"; "scale": multiplied by "value"; "zero": 0 (ablation); '
        '"patch": its value at the same step of a plain trace of "source_text" (activation patching)'
    )
    value: float | None = Field(default=None, description="set, scale: a finite number (|value| <= 1e6)")
    source_text: str | None = Field(default=None, description="patch: the text whose trace gives the values")
    from_: int | None = Field(default=None, alias="from", strict=True, description="the first step held (default 0)")
    to: int | None = Field(
        default=None,
        strict=True,
        description="the step after the last one held: exclusive, like a Python slice (default: the end)",
    )

    def as_dict(self) -> dict[str, Any]:
        """The intervention as model/interventions.py reads it (fields left out stay out)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class TraceRequest(BaseModel):
    """One input to trace: a text for text models, or vectors for vector models."""

    model: str = Field(description="a model id from /api/models")
    text: str | None = Field(default=None, description="input text, for text models")
    vectors: list[list[float]] | None = Field(default=None, description="(T, D) input vectors, for vector models")
    targets: list[list[float | None]] | None = Field(
        default=None,
        description="(T, K) what a values head should output at each step (null: not known); sent back beside "
        "'values' so a client draws both",
    )
    interventions: list[InterventionBody] | None = Field(
        default=None,
        description="units to hold, scale, zero or patch (at most GATESCOPE_MAX_INTERVENTIONS); the response then "
        "also carries 'intervened' and 'effect'. An empty list is a plain trace",
    )


class AttributeRequest(BaseModel):
    """One prediction to explain: the input (as for /api/trace), its step t, and how."""

    model: str = Field(description="a model id from /api/models")
    text: str | None = Field(default=None, description="input text, for text models")
    vectors: list[list[float]] | None = Field(default=None, description="(T, D) input vectors, for vector models")
    t: int = Field(description="the step whose prediction is explained, from 0 to T - 1")
    target: str | int | None = Field(
        default=None,
        description="what to explain: a token (next-token head), a class label or index, an output index (values "
        "head); default the actual next token (the predicted one at the last step), the predicted class, output 0",
    )
    method: Literal["grad_x_input", "integrated_gradients"] = Field(
        default="grad_x_input", description="gradient x input, or integrated gradients from the zero input"
    )
    steps: int | None = Field(
        default=None,
        description="integrated gradients: the midpoint rule's points (32; at most GATESCOPE_MAX_IG_STEPS)",
    )
    layer: int | None = Field(default=None, description="whose cell states C_s: a layer from 0 (default: the last)")


class AttributionTarget(BaseModel):
    """The output explained."""

    index: int = Field(description="its index: the token id, the class, or the values head's output")
    label: str = Field(description="the token, the class's label, or the output's label")
    display: str | None = Field(default=None, description="subword pieces: the text the token stands for")
    rule: Literal["given", "next token", "predicted", "first output"] = Field(
        description="how it was chosen: given in the request, the actual next token x_{t+1}, the prediction at t "
        "(the last step of a text, or a classes head), or a values head's output 0"
    )


class Completeness(BaseModel):
    """Integrated gradients' check: the attributions add up to the score's change from the baseline."""

    sum: float = Field(description="the sum of the attributions over the steps")
    difference: float = Field(description="f(x) - f(baseline): the score at the input less at the zero input")


class AttributionKernels(BaseModel):
    """Whether a model's first gradient x input waits on a compile (app/warm.py)."""

    model: str = Field(description="the model's id")
    kind: str | None = Field(description="its cell kind's compiled kernels (null: it runs none)")
    cell: str | None = Field(description="the cell, as a person reads it: 'GRU', 'peephole LSTM'")
    kernels: Literal["cold", "compiling", "ready", "failed"] = Field(
        description="cold: never compiled in this server (the first attribution compiles them and waits); compiling: "
        "being compiled now (an attribution waits for it); ready: no wait; failed: the compile beside the server "
        "failed, and the first attribution compiles them itself"
    )


class AttributeResponse(BaseModel):
    """What the prediction at step t depends on: a number per step s = 0 .. t."""

    model: str = Field(description="the model's id")
    t: int = Field(description="the step explained")
    tokens: list[str] = Field(description="the input's tokens up to t (steps' indices for vectors)")
    inputs: list[float] = Field(description="each input x_s's contribution to the score: gradient x input or IG")
    share: list[float] = Field(
        description="each input's share of the attribution: |inputs[s]| / sum over s of |inputs[s]| (zeros if all 0)"
    )
    largest: int = Field(description="the step s of the largest |inputs[s]| (the earliest of ties)")
    features: list[list[float]] | None = Field(
        default=None, description="vector models: each feature's share of inputs[s] (t+1 rows of D)"
    )
    cell: list[float] = Field(
        description="the norm over the layer's units of d score / d C_s (d h_s for GRU and RNN): the gradient "
        "flowing back through the cell state"
    )
    hidden: list[float] | None = Field(default=None, description="cells with C: the norm of d score / d h_s too")
    gate: Literal["c", "h"] = Field(description="what 'cell' is the gradient of: C_s, or h_s for cells without C")
    layer: int = Field(description="whose C_s (h_s): the request's layer, or the last")
    target: AttributionTarget
    score: float = Field(description="log p_t(target) (next-token and classes heads) or the value (values head)")
    score_kind: Literal["log_p", "value"] = Field(description="what the score is")
    method: Literal["grad_x_input", "integrated_gradients"]
    steps: int | None = Field(default=None, description="integrated gradients: the points of the midpoint rule")
    baseline: str | None = Field(default=None, description="integrated gradients: the baseline input")
    completeness: Completeness | None = Field(default=None, description="integrated gradients only")


class Prediction(BaseModel):
    """One candidate for the next token, or one class."""

    token: str = Field(description="the token, or the class's label")
    display: str | None = Field(default=None, description="subword pieces: the text it stands for ('Ġthe': ' the')")
    p: float = Field(description="its probability")


class Intervened(BaseModel):
    """An intervention as the server ran it: its units, and its steps resolved ('to' exclusive)."""

    layer: int
    units: list[int]
    gate: str
    op: str
    value: float | None = None
    source_text: str | None = None
    from_: int = Field(alias="from")
    to: int


class Effect(BaseModel):
    """What the interventions changed (``encoding=json``; compact and binary pack the arrays as the layers)."""

    p_before: list[float | None] | None = Field(
        default=None, description="per step: the probability of the actual next token, plain (null at the last step)"
    )
    p_after: list[float | None] | None = Field(default=None, description="... with the interventions")
    dloglik: list[float | None] | None = Field(default=None, description="per step: log p_after - log p_before")
    top_before: list[list[Prediction]] | None = Field(default=None, description="per step: the plain top-k")
    top_after: list[list[Prediction]] | None = Field(default=None, description="per step: the top-k with them")
    probs_before: list[list[float]] | None = Field(default=None, description="a classes head: plain class probs")
    probs_after: list[list[float]] | None = Field(default=None, description="a classes head: with them")
    values_before: list[list[float]] | None = Field(default=None, description="a values head: plain outputs")
    values_after: list[list[float]] | None = Field(default=None, description="a values head: with them")
    layers: list[dict[str, list[list[float]]]] = Field(
        description="per layer: gate -> T lists of H changes, after - before (0 where nothing changed)"
    )


class TraceResponse(BaseModel):
    """Every gate of every layer at every step (``encoding=json``)."""

    model: str = Field(description="the model's id")
    tokens: list[str] = Field(description="the input's tokens, one per step")
    display: list[str] | None = Field(
        default=None, description="subword tokenizers: each piece as the text it stands for ('Ġthe': ' the')"
    )
    unknown: list[int] = Field(description="positions whose token was not in the vocabulary")
    directions: list[str] = Field(
        default=["forward"],
        description='the direction of each block of H units of a layer: ["forward"], ["backward"] (a reverse '
        'model) or ["forward", "backward"] (bidirectional: forward units 0..H-1, backward H..2H-1)',
    )
    layers: list[dict[str, list[list[float]]]] = Field(
        description="per layer: gate -> T lists of H values (2H bidirectional), in time order"
    )
    probs: list[list[Prediction]] | None = Field(
        description="per step: the top predictions of the next token, or every class with its label (classes "
        "heads, up to 64 classes); null for a values head or a model without a head"
    )
    output: Output | None = Field(description="what the output head predicts; null without one")
    values: list[list[float]] | None = Field(description="per step: a values head's K outputs; null otherwise")
    targets: list[list[float | None]] | None = Field(
        description="per step: what a values head should output (the request's targets, or the input column the "
        "model's meta names; null where not known); null when not known at all"
    )
    intervened: list[Intervened] | None = Field(
        default=None, description="with interventions: what was held, as run (the layers show the held values)"
    )
    effect: Effect | None = Field(default=None, description="with interventions: before and after, step by step")


class Detail(BaseModel):
    """A refusal: what was wrong, in words a person can act on."""

    detail: str = Field(description="what was wrong, and what to do instead")


class ModuleChoice(Detail):
    """A refusal of an upload that holds several recurrent modules: send it again with the form field 'module'."""

    modules: list[str] | None = Field(
        default=None, description="the file's recurrent modules, one of which to send as 'module'"
    )


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the refusals an endpoint gives (each with a Detail body)."""
    return {code: {"model": Detail, "description": ERRORS[code]} for code in codes}


ERRORS = {
    400: "the upload is not a valid multipart form, or the Content-Length is not a number",
    403: "uploads are switched off, the model is bundled (cannot be deleted), or the request came from another web "
    "page, an unknown host name or without the server's token (app/security.py)",
    404: "no such model (GET /api/models lists them)",
    409: "a model with that name exists already, or the model is listed as unavailable (its files or card do not read)",
    411: "the body came without a Content-Length",
    413: "the input has more tokens than GATESCOPE_MAX_TOKENS (the interventions' patch source texts count "
    "together), its trace would not fit GATESCOPE_MAX_MEMORY_MB, the body is over GATESCOPE_MAX_BODY_MB, or the "
    "upload is over GATESCOPE_MAX_UPLOAD_MB",
    415: "the file type is not one gatescope reads",
    429: "this client has GATESCOPE_MAX_CLIENT_REQUESTS API requests in progress already: wait for one to end",
    503: "the models folder is read-only (or cannot be written) for this server: nothing was changed; or the server "
    "stayed busy (no memory free within GATESCOPE_BUSY_WAIT seconds): try again",
    507: "the disk holding the models folder is full, the uploaded models reach GATESCOPE_MAX_MODELS or "
    "GATESCOPE_MAX_MODELS_MB, or the network would take more than half the memory left (GATESCOPE_MAX_MEMORY_MB): "
    "nothing was stored",
    422: "empty input, unknown characters (named, with positions), wrong vector shapes or NaN, both or neither of "
    "text and vectors, targets of the wrong shape or for a model without a values head, an intervention that does "
    "not fit the model or the input (its index and field named) or more than GATESCOPE_MAX_INTERVENTIONS of them; "
    "an attribution's t out of range, a target the model cannot output, steps or layer out of bounds, a model "
    "without a head or with a backward direction; for an upload: not a weight file, malformed, a vocabulary that "
    "does not fit, or a head, head_at or labels field that does not fit the model",
}


def describe(errors: Sequence[Any]) -> str:
    """Pydantic's validation errors as one sentence: "body.model: field required; body.text: ..."."""
    parts = []
    for e in list(errors)[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{where}: {str(e.get('msg', 'invalid')).lower()}" if where else str(e.get("msg", "invalid")))
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more
