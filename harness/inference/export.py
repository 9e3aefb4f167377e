"""A finished run's model for use outside the harness (``harness export``): ONNX or
TorchScript, checked against torch after the export.

The model is rebuilt from the run folder with its final weights (``predict.load_run``), in
``eval`` mode on the CPU, and exported for the protocol's input: ``(N, C, H, W)`` float32 in
[0, 1] (an 8-bit grey image divided by 255, area-resized to the protocol's resolution; ``C``
the protocol's ``in_channels``, 1 for the competition), giving ``(N, 29, H, W)`` logits. The
batch is dynamic; height and width are dynamic when the model allows it (exported so, and
checked at another size), else fixed at the protocol's resolution.

After the export, the exported model (onnxruntime, or the TorchScript module loaded back) is
run on a validation image (and its mirror, a batch of two) and must give torch's logits
within ``TOLERANCE``; the difference found is reported. A model the exporter refuses is one
line naming the model and the exporter's reason.

torch's ONNX exporter (``torch.onnx.export(dynamo=True)``, which needs ``onnx`` and
``onnxscript``) and onnxruntime are imported only here, when a run is exported.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.atomic import atomic_write_bytes
from harness.data.images import read_gray, resize_image, to_input
from harness.errors import HarnessError
from harness.inference.predict import LoadedRun, images_for, load_run

__all__ = ["FORMATS", "TOLERANCE", "Exported", "export_run"]

#: What ``--format`` accepts.
FORMATS = ("onnx", "torchscript")
#: The largest difference allowed between the exported model's logits and torch's. Far
#: below what moves a pixel across the 0.5 threshold in practice; kernels that fuse or
#: reorder float32 sums differ from torch's by about 1e-6 on these models.
TOLERANCE = 1e-3
#: What ``--format onnx`` needs, and how to install it.
_ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")
_INSTALL = (
    "`pip install onnx onnxscript onnxruntime` (or `pip install 'segmentation-harness[export]'`)"
)
#: The loggers the exporters talk on (their graph dumps and retries are not for the user).
_CHATTY = ("torch", "onnxscript", "onnx_ir")
#: How ``harness.data.sources.synthetic_dataset`` names a phantom's folder.
_PHANTOM = re.compile(
    r"phantom-v(?P<version>\d+)-ids(?P<ids>\d+)-size(?P<size>\d+)-seed(?P<seed>\d+)"
)
#: How much larger the second size is at which dynamic height and width are checked.
_PROBE = 32

#: An exported model as a function: a batch in, logits out (numpy or torch, as float32).
Runner = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Exported:
    """What ``export_run`` wrote and how it checked it."""

    path: Path
    format: str
    model_name: str
    #: The input the export was made for: (channels, height, width); the batch is dynamic.
    input_shape: tuple[int, int, int]
    #: The dynamic axes: ``("batch",)`` or ``("batch", "height", "width")``.
    dynamic: tuple[str, ...]
    #: The validation image checked on, and the largest logit difference found there.
    image: Path
    max_difference: float
    tolerance: float = TOLERANCE
    #: What the tracer warned (TorchScript: a value it could not follow, fixed in the trace).
    warning: str | None = None


def export_run(
    run_dir: Path,
    fmt: str,
    out: Path,
    *,
    data: Path | None = None,
    plugins: Sequence[str] = (),
) -> Exported:
    """Export the run's final model to ``out`` as ``fmt`` and check it on a validation image of
    ``data`` (None: the protocol's built-in phantom, which the run must have trained on)."""
    if fmt not in FORMATS:
        raise HarnessError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        _require_onnx()
    run = load_run(Path(run_dir), device="cpu", plugins=plugins)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    model = run.model.float().to(memory_format=torch.contiguous_format).eval()
    image = _validation_image(run, data)
    batch = _input(image, run.protocol)
    with torch.no_grad():
        want = model(batch)
    exporter = _OnnxExport if fmt == "onnx" else _TorchScriptExport
    done = exporter(model, run.model_name, Path(out)).make(batch)
    difference = float((done.run(batch) - want).abs().max())
    if not difference <= TOLERANCE:  # NaN fails too
        Path(out).unlink(missing_ok=True)
        raise HarnessError(
            f"{run.model_name}: the {fmt} export's logits differ from torch's by "
            f"{difference:.2e} on {image.name} (tolerance {TOLERANCE:g}); nothing written"
        )
    shape = tuple(batch.shape[1:])
    return Exported(
        Path(out), fmt, run.model_name, shape, done.dynamic, image, difference, warning=done.warning
    )


def _require_onnx() -> None:
    import importlib.util

    for module in _ONNX_MODULES:
        if importlib.util.find_spec(module) is None:
            raise HarnessError(
                f"--format onnx: {module} is not installed; install it with {_INSTALL}"
            )


def _validation_image(run: LoadedRun, data: Path | None) -> Path:
    """The first validation image of the run's fold in ``data`` (None: the built-in phantom the
    run trained on, made again into the cache if it is not there)."""
    if data is None:
        data = _phantom(run)
    images = images_for(Path(data), "val", run.protocol)
    if not images:
        raise HarnessError(f"{data}: no validation images to check the export on")
    return images[0]


def _phantom(run: LoadedRun) -> Path:
    from harness.data import sources

    trained_on = run.record.get("benchmark", {}).get("dataset", {})
    name = str(trained_on.get("name"))
    made = _PHANTOM.fullmatch(name)
    if made is not None and int(made["version"]) == sources.PHANTOM_VERSION:
        root = sources.synthetic_dataset(int(made["ids"]), int(made["size"]), int(made["seed"]))
        if sources.describe(root).fingerprint == trained_on.get("fingerprint"):
            return root
    raise HarnessError(
        f"{run.run_dir}: the run trained on dataset {name!r}, not a built-in phantom; give "
        "--data PATH (its dataset folder) to check the export on one of its validation images"
    )


def _input(image: Path, protocol: object) -> torch.Tensor:
    """The image and its mirror as the model sees them: (2, C, R, R) float32 in [0, 1]."""
    x = to_input(resize_image(read_gray(image), protocol.resolution))[None]
    x = x.expand(-1, protocol.in_channels, -1, -1)
    return torch.cat([x, x.flip(-1)]).contiguous()


@dataclass
class _Done:
    """An export made: which axes are dynamic, and the exported model as a function."""

    dynamic: tuple[str, ...]
    run: Runner
    warning: str | None = None


class _Exporter:
    """One format's export of ``model`` to ``out``; a refusal is one line (``refused``)."""

    label = ""

    def __init__(self, model: torch.nn.Module, name: str, out: Path) -> None:
        self.model, self.name, self.out = model, name, out

    def make(self, batch: torch.Tensor) -> _Done:
        raise NotImplementedError

    def refused(self, exc: BaseException) -> HarnessError:
        root = exc
        while root.__cause__ is not None:
            root = root.__cause__
        text = " ".join(str(root).split()) or type(root).__name__
        return HarnessError(
            f"model {self.name!r} cannot be exported to {self.label}: "
            f"{type(root).__name__}: {text[:300]}"
        )

    def probe(self, run: Runner, batch: torch.Tensor) -> bool:
        """Whether the exported model also gives torch's logits at another height and width."""
        size = (batch.shape[-2] + _PROBE, batch.shape[-1] + _PROBE)
        x = torch.nn.functional.interpolate(batch[:1], size=size, mode="bilinear")
        try:
            with _quiet(), torch.no_grad():
                return bool((run(x) - self.model(x)).abs().max() <= TOLERANCE)
        except Exception:  # noqa: BLE001 - a model fixed in size fails here: so it is fixed
            return False


class _OnnxExport(_Exporter):
    """``torch.onnx.export(dynamo=True)``; checked with onnxruntime."""

    label = "ONNX"

    def make(self, batch: torch.Tensor) -> _Done:
        from torch.export import Dim

        every = ({0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC},)
        error: BaseException | None = None
        for axes, shapes in (
            (("batch", "height", "width"), every),
            (("batch",), ({0: Dim.DYNAMIC},)),
        ):
            try:
                self._export(batch, shapes)
            except Exception as exc:  # noqa: BLE001 - tried again with fewer dynamic axes
                error = error or exc
                continue
            run = self._session()
            if len(axes) == 1 or self.probe(run, batch):
                return _Done(axes, run)
        assert error is not None
        raise self.refused(error)

    def _export(self, batch: torch.Tensor, shapes: tuple[dict[int, object], ...]) -> None:
        with _quiet():
            program = torch.onnx.export(
                self.model,
                (batch,),
                input_names=["image"],
                output_names=["logits"],
                dynamic_shapes=shapes,
                dynamo=True,
            )
            program.save(str(self.out))

    def _session(self) -> Runner:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(self.out), providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(session.run(["logits"], {"image": x.numpy()})[0])


class _TorchScriptExport(_Exporter):
    """``torch.jit.trace`` on one image (the batch of two checks that the batch is dynamic);
    saved with ``torch.jit.save`` and loaded back to be checked."""

    label = "TorchScript"

    def make(self, batch: torch.Tensor) -> _Done:
        try:
            with _quiet(), torch.no_grad(), warnings.catch_warnings(record=True) as heard:
                warnings.simplefilter("always", torch.jit.TracerWarning)
                traced = torch.jit.trace(self.model, batch[:1], check_trace=False)
                buffer = io.BytesIO()
                torch.jit.save(traced, buffer)
        except Exception as exc:  # noqa: BLE001 - the tracer's refusal, said in one line
            raise self.refused(exc) from None
        tracer = [w for w in heard if issubclass(w.category, torch.jit.TracerWarning)]
        warning = " ".join(str(tracer[0].message).split())[:300] if tracer else None
        atomic_write_bytes(self.out, buffer.getvalue())
        with _quiet():
            loaded = torch.jit.load(str(self.out), map_location="cpu").eval()

        def run(x: torch.Tensor) -> torch.Tensor:
            with _quiet(), torch.no_grad():
                return loaded(x)

        axes = ("batch", "height", "width") if self.probe(run, batch) else ("batch",)
        return _Done(axes, run, warning)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters' warnings, logging and prints kept off the terminal while they run."""
    loggers = [logging.getLogger(name) for name in _CHATTY]
    levels = [logger.level for logger in loggers]
    sink = io.StringIO()
    try:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
