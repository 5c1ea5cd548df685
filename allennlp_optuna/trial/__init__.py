"""One trial: the objective Optuna calls, the executor that trains the config with AllenNLP's
``train_model``, data reuse and memory between trials, retraining and archiving a chosen trial,
and the trainer callbacks a trial's config gets (:mod:`~allennlp_optuna.trial.callbacks`)."""
