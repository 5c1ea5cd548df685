"""What every other package uses: errors and exit codes, password redaction, the names stored in
studies, the ``{"type", "attributes"}`` entry shape, and every use of a library's private names
(:mod:`~allennlp_optuna.core.compat`). Nothing here imports torch or AllenNLP's trainer."""
