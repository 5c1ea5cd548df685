"""AllenNLP ``TrainerCallback`` s registered by the plugin: ``optuna_pruner`` (pruning),
``optuna_metric_check`` (the ``--metrics`` key after the first epoch) and ``num_parameters``."""
