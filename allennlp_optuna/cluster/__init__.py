"""Running a study on a SLURM cluster: ``allennlp tune ... --launcher slurm`` (see ``docs/cluster.md``).

:func:`~allennlp_optuna.cluster.launcher.launch_study` submits ``--n-workers`` tasks as one job
array (:mod:`~allennlp_optuna.cluster.job`, with ``sbatch`` and the other SLURM commands in
:mod:`~allennlp_optuna.cluster.slurm`) and follows the study (:mod:`~allennlp_optuna.cluster.follow`);
each task runs :mod:`allennlp_optuna.cluster.worker`.
"""
from allennlp_optuna.cluster.launcher import launch_study

__all__ = ["launch_study"]
