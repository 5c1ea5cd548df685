"""Running a study's trials: in this process through Optuna's ``study.optimize``, or in worker
processes that share the study, within ``--n-trials`` and the study-wide ``--max-trials``."""
