"""The study and what defines it: the storage, the sampler and pruner, the search space, the
objectives and constraints, repeated trials, enqueued values, the config's evaluation, the checks
run before a study is created, and what a stored study says about itself (:mod:`~allennlp_optuna.study.record`)."""
