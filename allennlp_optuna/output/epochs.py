"""What ``allennlp retrain`` prints while it trains: one line per finished epoch, not AllenNLP's log.

AllenNLP writes each epoch's metrics to ``DIR/metrics_epoch_N.json`` as the epoch ends; a thread
reads the directory and prints a line per new file, with the metric the study optimized beside the
value the retrained trial reported at that epoch (its pruning callback recorded them), so that a
reproduction can be followed epoch by epoch. AllenNLP's full log goes to ``DIR/out.log`` (and, with
``--verbose``, to the console as well; see :mod:`allennlp_optuna.output.logs`).
"""
import contextlib
import os
import sys
import threading
import time
from typing import Any, Iterator, List, Mapping, Optional, Sequence, TextIO

from optuna.trial import FrozenTrial

from allennlp_optuna.output.best_params import describe_trial
from allennlp_optuna.output.formatting import format_params, format_seconds, format_value
from allennlp_optuna.output.logs import trial_logs_in_files
from allennlp_optuna.output.view import finished_epochs, read_json_object
from allennlp_optuna.study.objectives import monitored_metric
from allennlp_optuna.study.record import StoredStudy

POLL_SECONDS = 0.5


class EpochLines:
    """Prints ``epoch 2/3: validation_accuracy=0.7125 (trial 4: 0.7125), 9s`` for each epoch of a training.

    Args:
        directory: the training's serialization directory.
        monitors: the per-epoch metrics to show (``validation_accuracy``, ...).
        total: the number of epochs the training runs, if known.
        reference: for each epoch, the value the reproduced trial reported (its intermediate values).
        label: how the reference is named, e.g. ``trial 4``.
        stream: where the lines go.
    """

    def __init__(self, directory: str, monitors: Sequence[str], total: Optional[int] = None,
                 reference: Optional[Mapping[int, float]] = None, label: str = "", stream: Optional[TextIO] = None):
        self.directory = directory
        self.monitors = list(monitors)
        self.total = total
        self.reference = dict(reference or {})
        self.label = label
        self.stream = stream or sys.stdout
        self.printed: List[int] = []
        self.started = time.time()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="allennlp-retrain-epochs", daemon=True)

    def __enter__(self) -> "EpochLines":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stopping.set()
        self.thread.join()
        self.poll()  # the last epoch, if the thread had not seen it yet

    def _watch(self) -> None:
        while not self.stopping.wait(POLL_SECONDS):
            self.poll()

    def poll(self) -> None:
        """Print the epochs finished since the last poll."""
        for epoch in sorted(set(finished_epochs(self.directory)) - set(self.printed)):
            metrics = read_json_object(os.path.join(self.directory, f"metrics_epoch_{epoch}.json"))
            self.stream.write(self.line(epoch, metrics) + "\n")
            self.stream.flush()
            self.printed.append(epoch)

    def line(self, epoch: int, metrics: Mapping[str, Any]) -> str:
        """One epoch's line."""
        count = f"{epoch + 1}/{self.total}" if self.total else f"{epoch + 1}"
        values = []
        for monitor in self.monitors:
            value = metrics.get(monitor)
            text = f"{monitor}={format_value(value if isinstance(value, (int, float)) else None)}"
            if monitor == self.monitors[0] and epoch in self.reference:
                text += f" ({self.label}: {format_value(self.reference[epoch])})"
            values.append(text)
        return f"epoch {count}: {' '.join(values)}, {format_seconds(time.time() - self.started)}"


@contextlib.contextmanager
def retrain_console(stored: StoredStudy, trial: FrozenTrial, directory: str, config: Mapping[str, Any],
                    verbose: bool = False) -> Iterator[EpochLines]:
    """What ``allennlp retrain`` shows while it trains: which trial it reproduces, then a line per epoch;
    AllenNLP's INFO log only in ``DIR/out.log`` unless ``verbose``.

    Args:
        stored: the study.
        trial: the trial being retrained.
        directory: the retraining's serialization directory.
        config: the config it trains (for its number of epochs).
        verbose: also stream AllenNLP's log to the console.
    """
    epochs = config.get("trainer", {}).get("num_epochs")
    print(f"Retraining {describe_trial(stored, trial)}", flush=True)
    print(f"  with {format_params(trial.params)}", flush=True)
    print(f"  into {directory} (AllenNLP's log: {os.path.join(directory, 'out.log')})", flush=True)
    monitors = [monitored_metric(key) for key in stored.objectives.keys]
    lines = EpochLines(directory, monitors, epochs if isinstance(epochs, int) else None,
                       trial.intermediate_values, f"trial {trial.number}")
    with contextlib.ExitStack() as stack:
        if not verbose:
            stack.enter_context(trial_logs_in_files(sys.stderr))
        yield stack.enter_context(lines)
