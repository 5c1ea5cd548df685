"""Names that several modules read back from a study: trial and study attributes, file names.

They live here, with no import beyond the standard library, so that a module that only needs a
name (the summary, the report, the progress line) does not import torch or AllenNLP's trainer
to learn a string. Changing a value here changes what existing studies are read with: these
names are stored in users' databases.
"""

# Trial user attributes.
SERIALIZATION_DIR_ATTR = "serialization_dir"
"""Trial user attribute holding the absolute path of the trial's serialization directory."""

FAIL_REASON_ATTR = "fail_reason"
"""Trial user attribute holding why a trial failed (the traceback, or what stopped it)."""

STUDY_ERROR_ATTR = "study_error"
"""Trial user attribute holding the one-line message of an error that stops the whole study
(:class:`~allennlp_optuna.core.errors.StudyError`), e.g. a ``--metrics`` key training never reports."""

ENQUEUED_ATTR = "enqueued_from"
"""Trial user attribute naming the values file an enqueued trial came from."""

OVER_BUDGET_ATTR = "over_budget"
"""Trial user attribute of a trial that lost the race for the last place in ``--max-trials``."""

RUNS_ATTR = "runs"
"""Trial user attribute of a repeated trial (``--seeds``, ``--repeat``): ``[{"run", "values"}]``, one
entry per finished run; the trial's values are their means."""

VALUES_STD_ATTR = "values_std"
"""Trial user attribute of a repeated trial: the sample standard deviation of its runs' values, per objective."""

RESUMED_ATTR = "resumed_from"
"""Trial user attribute of a retry that continued a killed trial's training (see
:mod:`allennlp_optuna.faults.resume`): the killed trial's serialization directory."""

PREEMPTED_ATTR = "preempted"
"""Trial user attribute of a trial that a signal from SLURM stopped (preemption, requeue, ``scancel``,
the time limit's warning): the signal's name. Its retry, queued at once, continues from its checkpoint
(see :mod:`allennlp_optuna.faults.preemption`)."""

CONSTRAINT_VALUES_ATTR = "constraint_values"
"""Trial user attribute of a COMPLETE trial in a study with ``--constraint``: ``{key: value}``, the
constrained keys' values in its ``metrics.json`` (means over the runs of a repeated trial)."""

# Trial system attributes.
WORKER_ATTR = "allennlp_optuna:worker"
"""Trial system attribute ``{"host", "space", "pid", "started"}``: the process that runs the trial
(see :mod:`allennlp_optuna.faults.identity`)."""

HEARTBEAT_ATTR = "allennlp_optuna:heartbeat"
"""Trial system attribute: ``time.time()`` of a running trial's last heartbeat in a journal file
(see :mod:`allennlp_optuna.faults.heartbeat`; database storages keep heartbeats in a table of their own)."""

# Study user attributes that later commands (best-params, retrain, reports) read back.
METRIC_ATTR = "metrics"
"""Study user attribute: the ``metrics.json`` key the study optimizes."""

CONFIG_ATTR = "config_file"
"""Study user attribute: the absolute path of the config the study's trials trained with."""

REPEATS_ATTR = "repeats"
"""Study user attribute: ``{"seeds", "repeat"}``, how each trial was repeated (read back by ``retrain``)."""

SAMPLING_ATTR = "sampling"
"""Study user attribute: the sampler and pruner of the latest run, ``{"sampler", "pruner", "defaults"}``
(see :meth:`allennlp_optuna.study.samplers.OptunaSettings.describe`)."""

CONSTRAINTS_ATTR = "constraints"
"""Study user attribute: the ``--constraint`` bounds, e.g. ``["num_parameters<=5000"]`` (see
:mod:`allennlp_optuna.study.constraints`)."""

# Files in a trial's serialization directory.
METRICS_FILE = "metrics.json"
"""What AllenNLP's ``train_model`` writes the final metrics to; a trial's value comes from it."""

ARCHIVE_FILE = "model.tar.gz"
"""A trained model's archive, as ``allennlp train`` writes it."""

# Files in a study's serialization directory.
REPORT_FILE = "report.html"
"""The study's HTML report, which ``tune`` keeps current (see :mod:`allennlp_optuna.output.report`)."""

TRIALS_FILE = "trials.csv"
"""The study's trials table as CSV, beside the report."""
